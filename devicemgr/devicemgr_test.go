package devicemgr_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// psuSpec is a fast-polling power supply spec for tests.
func psuSpec(name, addr string) devicemgr.Spec {
	min0, max60 := 0.0, 60.0
	return devicemgr.Spec{
		Name: name, Address: addr, Driver: devicemgr.DriverSCPI,
		Init:         []string{"*CLS"},
		ReplyTimeout: 300 * time.Millisecond,
		BackoffMin:   20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Channels: []devicemgr.ChannelSpec{
			{Name: "voltage", Query: "MEAS:VOLT?", Period: 20 * time.Millisecond},
			{Name: "current", Query: "MEAS:CURR?", Period: 20 * time.Millisecond},
			{Name: "output", Query: "OUTP?", Period: 50 * time.Millisecond, Type: "bool"},
		},
		Commands: []devicemgr.CommandSpec{
			{Name: "set_voltage", Template: "SOUR:VOLT {volts}", Args: []devicemgr.ArgSpec{{Name: "volts", Min: min0, HasMin: true, Max: max60, HasMax: true}}},
			{Name: "output", Template: "OUTP {state}", Args: []devicemgr.ArgSpec{{Name: "state", Type: "enum", Values: []string{"ON", "OFF"}}}},
		},
	}
}

// rig runs a manager's devices until the test ends and collects what they publish.
type rig struct {
	t   *testing.T
	hub *telemetry.Hub
	sub *telemetry.Subscription
	mgr *devicemgr.Manager
}

func start(t *testing.T, specs ...devicemgr.Spec) *rig {
	t.Helper()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "test", Policy: telemetry.Lossless})
	mgr, err := devicemgr.New(specs, hub, devicemgr.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range mgr.Devices() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.Serve(ctx); err != nil {
				t.Errorf("%s: Serve: %v", d.Name(), err)
			}
		}()
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		sub.Close()
	})
	return &rig{t: t, hub: hub, sub: sub, mgr: mgr}
}

// until reads samples until ok returns true for one of them, or fails the test
// after a generous bound. It returns every sample read.
func (r *rig) until(what string, ok func(telemetry.Sample) bool) []telemetry.Sample {
	r.t.Helper()
	var seen []telemetry.Sample
	deadline := time.After(15 * time.Second)
	for {
		select {
		case <-r.sub.Ready():
			batch := r.sub.Drain(nil, 0)
			seen = append(seen, batch...)
			for _, s := range batch {
				if ok(s) {
					return seen
				}
			}
		case <-deadline:
			r.t.Fatalf("timed out waiting for %s (%d samples seen)", what, len(seen))
		}
	}
}

func (r *rig) waitState(name string, want devicemgr.State) devicemgr.Info {
	r.t.Helper()
	var info devicemgr.Info
	eventually.Truef(r.t, 15*time.Second, func() string { return fmt.Sprintf("%s: state %s, want %s", name, info.State, want) }, func() bool {
		var err error
		if info, err = r.mgr.Get(name); err != nil {
			r.t.Fatal(err)
		}
		return info.State == want
	})
	return info
}

func TestPollPublishesGoodSamplesInSequence(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{Seed: 1})
	r := start(t, psuSpec("psu", psu.Addr()))
	got := r.until("20 voltage samples", func(s telemetry.Sample) bool { return s.Channel == "voltage" && s.Seq == 20 })
	last := map[string]uint64{}
	for _, s := range got {
		if s.Quality != telemetry.Good {
			t.Fatalf("bad sample %v", s)
		}
		if s.Seq != last[s.Channel]+1 {
			t.Fatalf("%s: seq %d after %d", s.Channel, s.Seq, last[s.Channel])
		}
		last[s.Channel] = s.Seq
		if s.Channel == "voltage" && math.Abs(s.Value.F-sim.DefaultSetPoint) > 0.5 {
			t.Fatalf("voltage %v, want about %v", s.Value, sim.DefaultSetPoint)
		}
		if s.Channel == "output" && (s.Value.Kind != telemetry.KindBool || !s.Value.B) {
			t.Fatalf("output %v, want true", s.Value)
		}
	}
	info := r.waitState("psu", devicemgr.Connected)
	if info.Identity != "Switchyard,SIM-PSU,"+sim.Serial("psu")+",1.0" || info.ConnectedSince.IsZero() {
		t.Fatalf("info = %+v", info)
	}
	// Channels sharing a period are read in one round trip.
	if q := psu.Counters().Queries; q == 0 {
		t.Fatal("no queries answered")
	}
}

func TestCutConnectionIsABadStateForThatDeviceOnlyAndRecovers(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 3, Seed: 2})
	var specs []devicemgr.Spec
	for _, in := range fleet.Instruments() {
		specs = append(specs, psuSpec(in.Name(), in.Addr()))
	}
	r := start(t, specs...)
	for _, s := range specs {
		r.waitState(s.Name, devicemgr.Connected)
	}
	watch := r.mgr.WatchStates()
	defer watch.Close()
	r.sub.Drain(nil, 0)

	victim := fleet.Instrument("psu-02")
	if _, err := victim.UpdateFaults(func(f *sim.Faults) { f.Refuse = true }); err != nil {
		t.Fatal(err)
	}
	victim.Drop()

	seen := r.until("a COMM_ERROR sample of psu-02", func(s telemetry.Sample) bool {
		return s.Device == "psu-02" && s.Quality == telemetry.CommError
	})
	info := r.waitState("psu-02", devicemgr.Backoff)
	if info.LastError == "" || info.NextAttempt.IsZero() {
		t.Fatalf("backoff info = %+v", info)
	}
	// The other devices keep publishing good samples and stay connected.
	more := r.until("good samples of psu-01 and psu-03 after the cut", func(s telemetry.Sample) bool {
		return s.Device == "psu-03" && s.Channel == "voltage" && s.Seq > 60
	})
	for _, s := range append(seen, more...) {
		if s.Device != "psu-02" && s.Quality != telemetry.Good {
			t.Fatalf("healthy device published %v", s)
		}
		if s.Device == "psu-02" && s.Quality == telemetry.Good && s.TimeNs > info.ChangedAt.UnixNano() {
			t.Fatalf("GOOD sample from the cut device while it is down: %v", s)
		}
	}
	for _, name := range []string{"psu-01", "psu-03"} {
		if st, _ := r.mgr.Get(name); st.State != devicemgr.Connected {
			t.Fatalf("%s is %s", name, st.State)
		}
	}
	// Every state change seen is psu-02's.
	for _, ch := range watch.Take() {
		if ch.Name != "psu-02" {
			t.Fatalf("state change of %s: %s", ch.Name, ch.State)
		}
	}

	// Power comes back: it reconnects by itself and GOOD samples resume.
	if _, err := victim.UpdateFaults(func(f *sim.Faults) { f.Refuse = false }); err != nil {
		t.Fatal(err)
	}
	r.until("a GOOD sample of psu-02 again", func(s telemetry.Sample) bool {
		return s.Device == "psu-02" && s.Quality == telemetry.Good
	})
	info = r.waitState("psu-02", devicemgr.Connected)
	if info.Restarts < 1 {
		t.Fatalf("restarts = %d, want >= 1", info.Restarts)
	}
}

func TestHangGivesTimeoutAndGarbageGivesParseError(t *testing.T) {
	hang := simtest.SCPI(t, "hang", sim.Options{})
	junk := simtest.SCPI(t, "junk", sim.Options{})
	r := start(t, psuSpec("hang", hang.Addr()), psuSpec("junk", junk.Addr()))
	r.waitState("hang", devicemgr.Connected)
	r.waitState("junk", devicemgr.Connected)
	hang.UpdateFaults(func(f *sim.Faults) { f.Hang = true })
	junk.UpdateFaults(func(f *sim.Faults) { f.Garbage = true })
	r.until("TIMEOUT from the hung device", func(s telemetry.Sample) bool {
		return s.Device == "hang" && s.Quality == telemetry.Timeout
	})
	got := r.until("PARSE_ERROR from the garbage device", func(s telemetry.Sample) bool {
		return s.Device == "junk" && s.Quality == telemetry.ParseError
	})
	for _, s := range got {
		if s.Device == "junk" && s.Quality == telemetry.ParseError && !strings.Contains(s.Err, "garbage") {
			t.Fatalf("parse error without the reply: %v", s)
		}
	}
	// Garbage may be a reply meant for another query: the device resynchronises
	// (counted), and reads GOOD again once the instrument talks sense.
	eventually.True(t, 15*time.Second, "garbage putting the device out of step", func() bool {
		info, _ := r.mgr.Get("junk")
		return info.OutOfStep > 0
	})
	junk.UpdateFaults(func(f *sim.Faults) { f.Garbage = false })
	r.until("GOOD from the junk device again", func(s telemetry.Sample) bool {
		return s.Device == "junk" && s.Quality == telemetry.Good
	})
}

func TestCommandsAreSerialisedWithPolls(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	// Replies slowed to 150 ms below must stay well inside the reply timeout
	// also on a loaded machine (at 300 ms a poll's reply was late once, at a
	// load of 10 on 2 cores, and the connection was dropped).
	spec.ReplyTimeout = 2 * time.Second
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	ctx := context.Background()
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"20"}}); err != nil {
		t.Fatal(err)
	}
	if psu.SetPoint() != 20 {
		t.Fatalf("set-point %v, want 20", psu.SetPoint())
	}
	r.until("a voltage near 20 V", func(s telemetry.Sample) bool {
		return s.Channel == "voltage" && math.Abs(s.Value.F-20) < 0.5
	})
	rep, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Raw: "SOUR:VOLT?"})
	if err != nil || len(rep.Values) != 1 || rep.Values[0].F != 20 {
		t.Fatalf("raw query: %+v, %v", rep, err)
	}
	for _, tc := range []struct {
		dev  string
		cmd  devicemgr.Command
		want error
	}{
		{"nope", devicemgr.Command{Raw: "*IDN?"}, devicemgr.ErrNotFound},
		{"psu", devicemgr.Command{Name: "explode"}, devicemgr.ErrUnknownCommand},
		{"psu", devicemgr.Command{Name: "set_voltage", Args: []string{"61"}}, devicemgr.ErrBadArgument},
		{"psu", devicemgr.Command{Name: "set_voltage", Args: []string{"abc"}}, devicemgr.ErrBadArgument},
		{"psu", devicemgr.Command{Name: "output", Args: []string{"MAYBE"}}, devicemgr.ErrBadArgument},
		{"psu", devicemgr.Command{Raw: "SOUR:VOLT 1\nOUTP OFF"}, devicemgr.ErrBadArgument},
	} {
		if _, err := r.mgr.Send(ctx, tc.dev, tc.cmd); !errors.Is(err, tc.want) {
			t.Errorf("%s %+v: err %v, want %v", tc.dev, tc.cmd, err, tc.want)
		}
	}
	if psu.SetPoint() != 20 {
		t.Fatalf("a refused command changed the set-point to %v", psu.SetPoint())
	}
	// A reply slower than the command's timeout fails that command alone
	// with DeadlineExceeded: the exchange runs to its end on the device's
	// lane (150 ms is well inside the 2 s reply timeout), the connection
	// stays in step and the next caller is served normally.
	psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 150 * time.Millisecond })
	_, err = r.mgr.Send(ctx, "psu", devicemgr.Command{Raw: "SOUR:VOLT?", Timeout: 50 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow reply: err %v, want DeadlineExceeded", err)
	}
	// A caller whose deadline has passed before its turn is never sent.
	gone, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	if _, err := r.mgr.Send(gone, "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"30"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("1ns deadline: err %v, want DeadlineExceeded", err)
	}
	psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 0 })
	rep, err = r.mgr.Send(ctx, "psu", devicemgr.Command{Raw: "SOUR:VOLT?"})
	if err != nil || len(rep.Values) != 1 || rep.Values[0].F != 20 {
		t.Fatalf("after the caller left the device answered %+v, %v", rep, err)
	}
	if info, _ := r.mgr.Get("psu"); info.Restarts != 0 || info.State != devicemgr.Connected {
		t.Fatalf("a caller's deadline cut the connection: %+v", info)
	}
}

func TestPushedLines(t *testing.T) {
	env := simtest.Lines(t, "env", sim.Options{PushHz: 50})
	r := start(t, devicemgr.Spec{
		Name: "env", Address: env.Addr(), Driver: devicemgr.DriverLines, IdleTimeout: 500 * time.Millisecond,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
		Channels: []devicemgr.ChannelSpec{{Name: "temp"}, {Name: "line", Key: "seq", Type: "int"}},
	})
	got := r.until("10 lines", func(s telemetry.Sample) bool { return s.Channel == "line" && s.Seq == 10 })
	var lineNo int64
	for _, s := range got {
		if s.Quality != telemetry.Good {
			t.Fatalf("bad sample %v", s)
		}
		if s.Channel == "line" {
			if s.Value.I != lineNo+1 {
				t.Fatalf("pushed seq %d after %d: a line was missed", s.Value.I, lineNo)
			}
			lineNo = s.Value.I
		}
	}
	env.UpdateFaults(func(f *sim.Faults) { f.Hang = true })
	r.until("TIMEOUT when the device falls silent", func(s telemetry.Sample) bool { return s.Quality == telemetry.Timeout })
}

func TestSpecValidation(t *testing.T) {
	ok := psuSpec("psu", "127.0.0.1:1")
	for _, tc := range []struct {
		name string
		edit func(*devicemgr.Spec)
		want string
	}{
		{"no address", func(s *devicemgr.Spec) { s.Address = "" }, "address: required"},
		{"no port", func(s *devicemgr.Spec) { s.Address = "localhost" }, "address: want host:port"},
		{"driver", func(s *devicemgr.Spec) { s.Driver = "serial" }, "driver: must be"},
		{"period", func(s *devicemgr.Spec) { s.Channels[1].Period = 0 }, "channels[1].period: must be > 0"},
		{"dup channel", func(s *devicemgr.Spec) { s.Channels[1].Name = "voltage" }, "channels[1].name: duplicate"},
		{"type", func(s *devicemgr.Spec) { s.Channels[0].Type = "complex" }, "channels[0].type"},
		{"placeholder", func(s *devicemgr.Spec) { s.Commands[0].Template = "SOUR:VOLT {v}" }, "commands[0].args[0].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ok
			s.Channels = append([]devicemgr.ChannelSpec(nil), ok.Channels...)
			s.Commands = append([]devicemgr.CommandSpec(nil), ok.Commands...)
			tc.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := devicemgr.New([]devicemgr.Spec{ok, ok}, telemetry.NewHub(nil), devicemgr.Options{}); err == nil || !strings.Contains(err.Error(), "devices[1].name: duplicate") {
		t.Fatalf("duplicate names: %v", err)
	}
}
