package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestClientVerbs drives the client verbs against a served app of three
// simulated power supplies, as an operator would from a terminal: lists,
// commands, errors, alarms, JSON output, and the streaming verbs until Ctrl-C.
func TestClientVerbs(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 3, Seed: 3})
	a, _ := startApp(t, demoConfig(fleet))
	waitAllConnected(t, a.devices)
	grpcAddr, _ := a.Addrs()
	addr := grpcAddr.String()
	// verb runs a client verb with --addr and returns its exit code and output.
	verb := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(append([]string{args[0], "--addr", addr}, args[1:]...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	// ok runs a verb that must succeed and returns its output.
	ok := func(args ...string) string {
		t.Helper()
		code, stdout, stderr := verb(args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
		return stdout
	}

	out := ok("devices")
	for _, name := range []string{"psu-01", "psu-02", "psu-03"} {
		if !regexp.MustCompile(`(?m)^` + name + `\s+CONNECTED\s+scpi\s+127\.0\.0\.1:\d+\s+0$`).MatchString(out) {
			t.Errorf("devices: no connected row for %s:\n%s", name, out)
		}
	}
	if !strings.HasPrefix(out, "NAME") || strings.Count(out, "\n") != 4 {
		t.Errorf("devices: want a header and 3 rows:\n%s", out)
	}

	// A set-point goes to the instrument and comes back as a reading.
	if out := ok("send", "psu-01", "set_voltage", "24"); out != "ok\n" {
		t.Errorf("send set_voltage: %q, want ok", out)
	}
	eventually.Truef(t, 20*time.Second, func() string { return "latest setpoint 24 V:\n" + out }, func() bool {
		out = ok("latest", "psu-01", "set*")
		v, found := latestValue(out, "psu-01", "setpoint")
		return found && math.Abs(v-24) < 0.01
	})
	// The reply as it came, then the values parsed from it (unless the same).
	out = ok("send", "--raw", "MEAS:VOLT?", "psu-02")
	if reply, values, _ := strings.Cut(strings.TrimSuffix(out, "\n"), "\n"); !near(reply, 12, 0.5) ||
		values != "" && !near(strings.TrimPrefix(values, "values: "), 12, 0.5) {
		t.Errorf("send --raw MEAS:VOLT?: %q, want about 12", out)
	}
	code, _, stderr := verb("send", "psu-01", "set_voltage", "99")
	if code != 1 || !strings.Contains(stderr, "switchyard send: ") || !strings.Contains(stderr, "above the maximum") {
		t.Errorf("send 99 V: exit %d, stderr %q; want 1 and the server's message", code, stderr)
	}
	if out := ok("abort", "psu-02", "operator", "pressed", "stop"); out != "idle: nothing to abort\n" {
		t.Errorf("abort on an idle device: %q", out)
	}

	out = ok("tree")
	for _, re := range []string{`^switchyard\s+supervisor\(one_for_one\)\s+RUNNING\s+restarts 0\n`, `\n  devices\s+supervisor\(one_for_one\)\s+RUNNING`,
		`\n    psu-01\s+worker\s+RUNNING\s+restarts 0\s+connected\n`, `\n    psu-03\s+worker\s+RUNNING\s+restarts 0\s+connected\n`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("tree does not match %s:\n%s", re, out)
		}
	}

	// An operator's restart of one device process: its restart count goes up,
	// it connects again; an unknown path is the server's NOT_FOUND message.
	if out := ok("restart", "devices/psu-03"); out != "restarted: devices/psu-03\n" {
		t.Errorf("restart: %q", out)
	}
	eventually.Truef(t, 20*time.Second, func() string { return "psu-03 restarted once and connected:\n" + out }, func() bool {
		out = ok("tree")
		return regexp.MustCompile(`\n    psu-03\s+worker\s+RUNNING\s+restarts 1\s+connected\n`).MatchString(out)
	})
	if code, _, stderr := verb("restart", "devices/nope"); code != 1 || !strings.Contains(stderr, "nope") {
		t.Errorf("restart of an unknown process: exit %d, stderr %q", code, stderr)
	}

	// 24 V is above psu-01's HIHI limit of 20 V.
	eventually.Truef(t, 20*time.Second, func() string { return "the HIHI alarm:\n" + out }, func() bool {
		out = ok("alarms")
		return regexp.MustCompile(`(?m)^psu-01\s+voltage\s+HIHI\s+MAJOR\s+MAJOR\s+no\s+2[34](\.\d+)?\s+value .* >= HIHI 20$`).MatchString(out)
	})
	out = ok("ack", "--who", "tester", "--comment", "seen it", "psu-01", "voltage")
	if !regexp.MustCompile(`(?m)^psu-01\s+voltage\s+HIHI\s+MAJOR\s+MAJOR\s+yes \(tester\)\s`).MatchString(out) {
		t.Errorf("ack: want the acknowledged alarm:\n%s", out)
	}
	if code, _, stderr := verb("ack", "--who", "tester", "psu-01", "nope"); code != 1 || stderr == "" {
		t.Errorf("ack of an unknown channel: exit %d, stderr %q", code, stderr)
	}

	// --json prints one line of protojson a response.
	for _, args := range [][]string{{"devices", "--json"}, {"latest", "--json", "psu-0*", "voltage"}, {"tree", "--json"}, {"alarms", "--json"}} {
		out := ok(args...)
		var m map[string]any
		if strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &m) != nil || len(m) == 0 {
			t.Errorf("%v: want one line of JSON, got:\n%s", args, out)
		}
	}
	var devs struct {
		Devices []struct{ Name, State string }
	}
	if err := json.Unmarshal([]byte(ok("devices", "--json")), &devs); err != nil || len(devs.Devices) != 3 || devs.Devices[0].State != "DEVICE_STATE_CONNECTED" {
		t.Errorf("devices --json = %+v, %v", devs, err)
	}

	t.Run("watch", func(t *testing.T) {
		w := startVerb(t, "watch", "--addr", addr, "--channels", "voltage", "psu-01")
		sample := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} psu-01/voltage 2[34](\.\d+)? GOOD seq \d+$`)
		w.waitLines(t, "psu-01 voltage samples", func(lines []string) bool {
			n := 0
			for _, l := range lines {
				if !sample.MatchString(l) {
					t.Fatalf("unexpected line %q", l)
				}
				n++
			}
			return n >= 3
		})
		w.stop(t)

		w = startVerb(t, "watch", "--addr", addr, "--json", "--states", "psu-02")
		w.waitLines(t, "JSON lines with psu-02's state and samples", func(lines []string) bool {
			var state, samples bool
			for _, l := range lines {
				var resp struct {
					Samples []struct{ Device string }
					Devices []struct{ Name, State string }
				}
				if err := json.Unmarshal([]byte(l), &resp); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				state = state || len(resp.Devices) > 0 && resp.Devices[0].State == "DEVICE_STATE_CONNECTED"
				samples = samples || len(resp.Samples) > 0 && resp.Samples[0].Device == "psu-02"
			}
			return state && samples
		})
		w.stop(t)
	})

	// An instrument that refuses connections is a state of its device process:
	// STATUS events with the backoff, then connected again once it is back.
	t.Run("events", func(t *testing.T) {
		bad := fleet.Instruments()[1]
		w := startVerb(t, "events", "--addr", addr, "--snapshot", "--process", "devices/"+bad.Name(), "--kind", "Status")
		w.waitLines(t, "the snapshot", func(lines []string) bool { return len(lines) > 0 && strings.HasPrefix(lines[0], "switchyard ") })
		if err := bad.SetFaults(sim.Faults{Refuse: true}); err != nil {
			t.Fatal(err)
		}
		bad.Drop()
		event := regexp.MustCompile(`^seq \d+ \d\d:\d\d:\d\d\.\d{3} switchyard/devices/` + bad.Name() + ` STATUS (.*)$`)
		// status waits for a STATUS event whose text starts with prefix; every
		// event line must be one of bad's STATUS events.
		status := func(prefix string) {
			t.Helper()
			w.waitLines(t, "a STATUS "+prefix+" event", func(lines []string) bool {
				for _, l := range lines {
					if m := event.FindStringSubmatch(l); m != nil && strings.HasPrefix(m[1], prefix) {
						return true
					} else if m == nil && strings.HasPrefix(l, "seq ") {
						t.Fatalf("unexpected event %q", l)
					}
				}
				return false
			})
		}
		status("backoff: ")
		eventually.Truef(t, 20*time.Second, func() string { return bad.Name() + " in backoff:\n" + out }, func() bool {
			out = ok("devices")
			return regexp.MustCompile(`(?m)^` + bad.Name() + `\s+BACKOFF\s.*connection refused$`).MatchString(out)
		})
		if err := bad.SetFaults(sim.Faults{}); err != nil {
			t.Fatal(err)
		}
		status("connected")
		w.stop(t)
	})
}

// TestClientUsage: mistakes on the command line exit 2 with the verb's usage
// line, before anything is dialled; a server that is not there exits 1.
func TestClientUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"devices", "--bogus"}, "switchyard devices: flag provided but not defined: -bogus\nusage: switchyard devices [flags]\n"},
		{[]string{"devices", "extra"}, `unexpected argument "extra"`},
		{[]string{"send", "psu-01"}, "switchyard send: missing COMMAND\nusage: switchyard send [flags] (DEVICE COMMAND [ARG...] | --raw LINE DEVICE)\n"},
		{[]string{"send", "--raw", "*IDN?", "psu-01", "identify"}, `unexpected argument "identify"`},
		{[]string{"abort"}, "switchyard abort: missing argument\nusage: switchyard abort"},
		{[]string{"restart", "a", "b"}, "switchyard restart: unexpected argument \"b\"\nusage: switchyard restart"},
		{[]string{"latest", "a", "b", "c"}, `unexpected argument "c"`},
		{[]string{"watch", "--channels", "voltage"}, "switchyard watch: missing argument"},
		{[]string{"events", "--kind", "status", "--kind", "bogus"}, `switchyard events: unknown event kind "bogus" (want starting, stopped, added, removed, started, exited, restart_scheduled, leaked, auto_shutdown, status, reconfigured)`},
		{[]string{"ack", "--who", "me", "psu-01"}, "switchyard ack: missing argument"},
		{[]string{"send", "--cmd-timeout", "soon", "psu-01", "identify"}, `invalid value "soon" for flag -cmd-timeout`},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}

	var stdout, stderr bytes.Buffer
	if code := run([]string{"events", "-h"}, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "usage: switchyard events") ||
		!strings.Contains(stdout.String(), "-kind value") {
		t.Errorf("events -h: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}

	// Nobody listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	stdout.Reset()
	stderr.Reset()
	if code := run([]string{"devices", "--addr", ln.Addr().String()}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "connection refused") {
		t.Errorf("devices without a server: exit %d, stderr %q", code, stderr.String())
	}
}

// latestValue finds a channel's row in the output of latest and parses its value.
func latestValue(out, device, channel string) (float64, bool) {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 6 && f[0] == device && f[1] == channel {
			v, err := strconv.ParseFloat(f[2], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func near(s string, want, tol float64) bool {
	v, err := strconv.ParseFloat(s, 64)
	return err == nil && math.Abs(v-want) <= tol
}

// runningVerb is a streaming client verb running on its own goroutine.
type runningVerb struct {
	mu             sync.Mutex // guards stdout and stderr, written by the verb's goroutine
	stdout, stderr strings.Builder
	cancel         context.CancelFunc
	done           chan int
}

// output is what the verb printed so far.
func (v *runningVerb) output() (stdout, stderr string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.stdout.String(), v.stderr.String()
}

// startVerb runs a client verb on a goroutine until stop (or the test's end)
// cancels its context, as Ctrl-C does.
func startVerb(t *testing.T, args ...string) *runningVerb {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v := &runningVerb{cancel: cancel, done: make(chan int, 1)}
	go func() { v.done <- runCtx(ctx, args, lockedWriter{&v.mu, &v.stdout}, lockedWriter{&v.mu, &v.stderr}) }()
	t.Cleanup(func() {
		cancel()
		<-v.done
	})
	return v
}

// waitLines polls the verb's output lines until cond holds, failing the test
// after 30 s or if the verb ends.
func (v *runningVerb) waitLines(t *testing.T, what string, cond func(lines []string) bool) {
	t.Helper()
	eventually.Truef(t, 30*time.Second, func() string {
		stdout, stderr := v.output()
		return what + "; stdout:\n" + stdout + "stderr:\n" + stderr
	}, func() bool {
		stdout, stderr := v.output()
		select {
		case code := <-v.done:
			v.done <- code
			t.Fatalf("%s: the verb ended with exit code %d before; stderr %q", what, code, stderr)
		default:
		}
		var lines []string
		for l := range strings.Lines(stdout) {
			lines = append(lines, strings.TrimSuffix(l, "\n"))
		}
		return cond(lines)
	})
}

// stop cancels the verb and checks that it ends with exit code 0 and no error.
func (v *runningVerb) stop(t *testing.T) {
	t.Helper()
	v.cancel()
	select {
	case code := <-v.done:
		v.done <- code
		if _, stderr := v.output(); code != 0 || stderr != "" {
			t.Errorf("after Ctrl-C: exit %d, stderr %q; want 0 and nothing", code, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the verb did not end within 20 s of Ctrl-C")
	}
}
