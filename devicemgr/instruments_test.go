package devicemgr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// acksSpec is a model of sim's "acks" supply: it answers every write with OK
// or ERR <why> and refuses joined messages.
func acksSpec(addr string) devicemgr.Spec {
	s := psuSpec("psu", addr)
	s.WriteAck, s.ErrorReply = "OK", "ERR {message}"
	s.Channels = append(s.Channels, devicemgr.ChannelSpec{Name: "setpoint", Query: "SOUR:VOLT?", Period: 20 * time.Millisecond})
	return s
}

var acks = sim.Personality{Ack: true, NoJoin: true}

// TestAcknowledgedWritesAreReadNotShifted (issue 12, item 1): an instrument
// that acknowledges every write, with init lines and a read-back command. With
// write_ack declared every acknowledgement is read where it belongs: the
// voltage reads the measured volts, the set-point the set-point. Without it
// (the case once seen as a set-point showing noisy volts and a voltage
// reading exactly the set-point, all GOOD), no reading is ever GOOD with
// another query's answer: the device is out of step, says why, and reconnects.
func TestAcknowledgedWritesAreReadNotShifted(t *testing.T) {
	// The Tagged simulator's readings say which query they answer:
	// MEAS:VOLT? 10.xxxx, MEAS:CURR? 20.xxxx.
	tagged := sim.Personality{Ack: true, NoJoin: true, Tagged: true}
	check := func(t *testing.T, got []telemetry.Sample, setPoint float64) {
		t.Helper()
		for _, s := range got {
			if s.Quality != telemetry.Good {
				continue
			}
			v := s.Value.F
			if s.Channel == "voltage" && !(v > 10 && v < 11) || s.Channel == "current" && !(v > 20 && v < 21) ||
				s.Channel == "setpoint" && v != setPoint && v != sim.DefaultSetPoint {
				t.Fatalf("GOOD %s %v is another query's answer", s.Channel, v)
			}
		}
	}
	t.Run("declared", func(t *testing.T) {
		psu := simtest.SCPI(t, "psu", sim.Options{Personality: tagged})
		spec := acksSpec(psu.Addr())
		spec.Init = []string{"*CLS", "SOUR:VOLT 5"}
		spec.Commands = append(spec.Commands, devicemgr.CommandSpec{Name: "set_checked", Template: "SOUR:VOLT {v}",
			Args: []devicemgr.ArgSpec{{Name: "v"}}, Readback: "setpoint", Tolerance: 0.001})
		r := start(t, spec)
		got := r.until("a setpoint of 5", func(s telemetry.Sample) bool { return s.Channel == "setpoint" && s.Value.F == 5 })
		check(t, got, 5)
		if _, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_checked", Args: []string{"7"}}); err != nil {
			t.Fatalf("set_checked: %v", err)
		}
		got = r.until("40 more voltage samples", func(s telemetry.Sample) bool { return s.Channel == "voltage" && s.Seq > 60 })
		check(t, got, 7)
		if info, _ := r.mgr.Get("psu"); info.OutOfStep != 0 || info.Restarts != 0 {
			t.Fatalf("out of step %d, reconnected %d: %s", info.OutOfStep, info.Restarts, info.LastError)
		}
	})
	t.Run("not declared", func(t *testing.T) {
		psu := simtest.SCPI(t, "psu", sim.Options{Personality: tagged})
		spec := psuSpec("psu", psu.Addr())
		spec.WriteConfirm = "-"
		spec.Init = []string{"SOUR:VOLT 5"}
		spec.Channels = append(spec.Channels, devicemgr.ChannelSpec{Name: "setpoint", Query: "SOUR:VOLT?", Period: 20 * time.Millisecond})
		spec.Commands = append(spec.Commands, devicemgr.CommandSpec{Name: "set_checked", Template: "SOUR:VOLT {v}",
			Args: []devicemgr.ArgSpec{{Name: "v"}}, Readback: "setpoint", Tolerance: 0.001})
		r := start(t, spec)
		got := r.until("out of step, naming write_ack", func(s telemetry.Sample) bool {
			return strings.Contains(s.Err, "out of step") && strings.Contains(s.Err, "set write_ack")
		})
		check(t, got, 5)
		for range 5 {
			_, _ = r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_checked", Args: []string{"5"}})
		}
		time.Sleep(200 * time.Millisecond)
		check(t, r.sub.Drain(nil, 0), 5)
	})
}

// TestJoiningIsOptIn (item 2): channels of one period are not joined with ';'
// unless the model says the instrument takes it, so an instrument that
// refuses joined messages is polled as it is; a model that allows joining for
// it gets the instrument's refusal as COMM_ERROR with its words, never a value.
func TestJoiningIsOptIn(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{Personality: acks})
	r := start(t, acksSpec(psu.Addr()))
	got := r.until("10 current samples", func(s telemetry.Sample) bool { return s.Channel == "current" && s.Seq == 10 })
	for _, s := range got {
		if s.Quality != telemetry.Good {
			t.Fatalf("default model: %v", s)
		}
	}

	joining := simtest.SCPI(t, "joining", sim.Options{Personality: acks})
	spec := acksSpec(joining.Addr())
	spec.Name, spec.MaxJoin = "joining", 8
	r2 := start(t, spec)
	r2.until("the refusal of a joined poll", func(s telemetry.Sample) bool {
		if s.Quality == telemetry.Good && s.Channel != "output" {
			t.Fatalf("a joined poll read GOOD %v from an instrument that refuses joining", s)
		}
		return s.Quality == telemetry.CommError && strings.Contains(s.Err, `"ERR joined messages not supported"`)
	})
}

// TestReadbackWorksWithReplyAndLiteralFormats (items 3 and 4): a command that
// checks its acknowledgement with a literal reply format ("OK") still waits
// for its read-back, and fails if it does not settle.
func TestReadbackWorksWithReplyAndLiteralFormats(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{Personality: sim.Personality{Ack: true}})
	spec := psuSpec("psu", psu.Addr())
	spec.WriteConfirm = "-"
	spec.Channels = append(spec.Channels, devicemgr.ChannelSpec{Name: "setpoint", Query: "SOUR:VOLT?", Period: time.Hour})
	spec.Commands = []devicemgr.CommandSpec{
		{Name: "set_checked", Template: "SOUR:VOLT {v}", ReplyFormat: "OK", Args: []devicemgr.ArgSpec{{Name: "v"}},
			Readback: "setpoint", Tolerance: 0.001},
		{Name: "set_never", Template: "SOUR:VOLT {v}", ReplyFormat: "re:OK", Args: []devicemgr.ArgSpec{{Name: "v"}},
			Readback: "current", Tolerance: 0.001, Settle: 300 * time.Millisecond},
	}
	spec.Init = nil
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	ctx := context.Background()
	rep, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_checked", Args: []string{"9"}})
	if err != nil || rep.Text != "OK" || psu.SetPoint() != 9 {
		t.Fatalf("set_checked: %+v, %v, set-point %v", rep, err, psu.SetPoint())
	}
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_never", Args: []string{"10"}}); !errors.Is(err, devicemgr.ErrNotSettled) {
		t.Fatalf("set_never: %v, want ErrNotSettled: the read-back was not awaited", err)
	}
}

// TestInstrumentErrorsFailTheCommand (item 5): an instrument's ERR reply, or a
// non-zero code in its error queue when the model asks, fails the command with
// an *InstrumentError holding the instrument's words; the connection stays.
func TestInstrumentErrorsFailTheCommand(t *testing.T) {
	pump := simtest.SCPI(t, "pump", sim.Options{Personality: acks})
	tidy := simtest.SCPI(t, "tidy", sim.Options{})
	tidySpec := psuSpec("tidy", tidy.Addr())
	tidySpec.ErrorQuery = "SYST:ERR?"
	acksPump := acksSpec(pump.Addr())
	acksPump.Name = "pump"
	r := start(t, acksPump, tidySpec)
	r.waitState("pump", devicemgr.Connected)
	r.waitState("tidy", devicemgr.Connected)
	for dev, words := range map[string]string{"pump": "data out of range", "tidy": `-222,"Data out of range"`} {
		_, err := r.mgr.Send(context.Background(), dev, devicemgr.Command{Raw: "SOUR:VOLT 99"})
		var ie *devicemgr.InstrumentError
		if !errors.As(err, &ie) || !errors.Is(err, devicemgr.ErrInstrument) || ie.Message != words || ie.Device != dev || ie.Command != `raw "SOUR:VOLT 99"` {
			t.Errorf("%s: %#v, want an InstrumentError %q", dev, err, words)
		}
		if _, err := r.mgr.Send(context.Background(), dev, devicemgr.Command{Name: "set_voltage", Args: []string{"8"}}); err != nil {
			t.Errorf("%s after the refusal: %v", dev, err)
		}
		if info, _ := r.mgr.Get(dev); info.Restarts != 0 {
			t.Errorf("%s reconnected after an instrument error: %s", dev, info.LastError)
		}
	}
}

// TestInstrumentThatComesBackIsNoticedQuickly (item 6): while a device waits
// out a long backoff after its instrument could not be reached, a connect
// probe notices the instrument is back and it reconnects at once.
func TestInstrumentThatComesBackIsNoticedQuickly(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	if err := psu.SetFaults(sim.Faults{Refuse: true}); err != nil { // switched off
		t.Fatal(err)
	}
	spec := psuSpec("psu", psu.Addr())
	spec.BackoffMin, spec.BackoffMax = 30*time.Second, 30*time.Second
	spec.ProbeInterval = 20 * time.Millisecond
	r := start(t, spec)
	if info := r.waitState("psu", devicemgr.Backoff); !strings.Contains(info.LastError, "refused") {
		t.Fatalf("backoff after %q, want a refused dial", info.LastError)
	}
	back := time.Now()
	if err := psu.SetFaults(sim.Faults{}); err != nil { // switched on again
		t.Fatal(err)
	}
	r.waitState("psu", devicemgr.Connected)
	if waited := time.Since(back); waited > 15*time.Second {
		t.Fatalf("reconnected %v after the instrument came back, with a 30 s backoff: no probe", waited)
	}
}

// TestModbusReadsAdjacentRegistersInOneRequest (item 7): channels of one
// period in adjacent registers of one table share a request; requests are
// counted.
func TestModbusReadsAdjacentRegistersInOneRequest(t *testing.T) {
	tc := simtest.Modbus(t, "tc", sim.Options{})
	spec := tcSpec(tc.Addr())
	spec.Channels = spec.Channels[:4] // temp (input 0-1), setpoint (holding 0), heater (input 2), enabled (coil 0)
	for i := range spec.Channels {
		spec.Channels[i].Period = 20 * time.Millisecond
	}
	reg := prometheus.NewRegistry()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "test", Policy: telemetry.Lossless})
	defer sub.Close()
	mgr, err := devicemgr.New([]devicemgr.Spec{spec}, hub, devicemgr.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Devices()[0].Serve(ctx) }()
	defer func() { cancel(); <-done }()
	polls := func() float64 { return metrictest.Sum(t, reg, "switchyard_device_polls_total") }
	eventually.Truef(t, 15*time.Second, func() string { return fmt.Sprintf("%v polls, want 20", polls()) }, func() bool { return polls() >= 20 })
	cancel()
	<-done
	p, req := polls(), metrictest.Sum(t, reg, "switchyard_device_requests_total")
	// Three blocks: input registers 0-2 (temp and heater), holding 0, coil 0.
	if req != 3*p {
		t.Fatalf("%v requests for %v polls of 4 channels, want 3 per poll", req, p)
	}
	if q := float64(tc.Counters().Queries); q != req {
		t.Fatalf("the controller answered %v requests, the device counted %v", q, req)
	}
	for _, s := range sub.Drain(nil, 0) {
		if s.Quality != telemetry.Good && s.Quality != telemetry.Disconnected {
			t.Fatalf("bad sample %v", s)
		}
	}
}

// TestArgumentsCannotInjectCommands (item 8): a string argument cannot carry
// a second command, floats must be finite, raw lines are bounded and
// printable; each bad request fails alone and changes nothing.
func TestArgumentsCannotInjectCommands(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	spec.Commands = append(spec.Commands,
		devicemgr.CommandSpec{Name: "label", Template: "DISP:TEXT {text}", Args: []devicemgr.ArgSpec{{Name: "text", Type: "string"}}},
		devicemgr.CommandSpec{Name: "mode", Template: "MODE {m}", Args: []devicemgr.ArgSpec{{Name: "m", Type: "string", Pattern: "[A-Z]{1,4}"}}},
	)
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	ctx := context.Background()
	for _, cmd := range []devicemgr.Command{
		{Name: "label", Args: []string{"x;OUTP OFF;SOUR:VOLT 59"}},
		{Name: "label", Args: []string{"bell\a"}},
		{Name: "label", Args: []string{"evil\u202Eexe"}},
		{Name: "mode", Args: []string{"auto"}},
		{Name: "set_voltage", Args: []string{"NaN"}},
		{Name: "set_voltage", Args: []string{"+Inf"}},
		{Raw: "SOUR:VOLT 59\x00"},
		{Raw: "\x1b[2J"},
		{Raw: strings.Repeat("A", 900<<10)},
		{Raw: "SOUR:VOLT 59\u2028OUTP OFF"},
	} {
		if _, err := r.mgr.Send(ctx, "psu", cmd); !errors.Is(err, devicemgr.ErrBadArgument) {
			t.Errorf("%.60s: %v, want ErrBadArgument", cmd, err)
		}
	}
	if !psu.Output() || psu.SetPoint() != sim.DefaultSetPoint {
		t.Fatalf("a refused command reached the instrument: output %v, set-point %v", psu.Output(), psu.SetPoint())
	}
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "mode", Args: []string{"AUTO"}}); err != nil && !strings.Contains(err.Error(), "MODE") {
		t.Fatalf("a matching pattern was refused: %v", err)
	}
	if info, _ := r.mgr.Get("psu"); info.Restarts != 0 {
		t.Fatalf("bad requests cut the connection: %s", info.LastError)
	}
}
