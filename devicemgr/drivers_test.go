package devicemgr_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

func fast(s devicemgr.Spec) devicemgr.Spec {
	s.ReplyTimeout = 300 * time.Millisecond
	s.IdleTimeout = 500 * time.Millisecond
	s.BackoffMin, s.BackoffMax = 20*time.Millisecond, 100*time.Millisecond
	return s
}

func TestSCPIReplyFormatsReadSeveralChannels(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{Seed: 3})
	r := start(t, fast(devicemgr.Spec{
		Name: "psu", Address: psu.Addr(), Driver: devicemgr.DriverSCPI,
		Tags: map[string]string{"area": "vacuum"},
		Channels: []devicemgr.ChannelSpec{
			// One query, one reply, two channels.
			{Name: "volts", Query: "MEAS:VOLT?;MEAS:CURR?", Reply: "%f;%f", Index: 0, Period: 20 * time.Millisecond},
			{Name: "amps", Query: "MEAS:VOLT?;MEAS:CURR?", Reply: "%f;%f", Index: 1, Period: 20 * time.Millisecond},
			{Name: "serial", Query: "*IDN?", Reply: `re:(?P<maker>[^,]+),(?P<model>[^,]+),(?P<serial>[^,]+),.*`, Key: "serial", Type: "string", Period: 50 * time.Millisecond},
			{Name: "errors", Query: "SYST:ERR?", Reply: `re:(?P<errors>[-+]?\d+),".*"`, Type: "int", Period: 50 * time.Millisecond},
		},
	}))
	got := r.until("10 volts samples", func(s telemetry.Sample) bool { return s.Channel == "volts" && s.Seq == 10 })
	got = append(got, r.until("an errors sample", func(s telemetry.Sample) bool { return s.Channel == "errors" })...)
	seen := map[string]bool{}
	for _, s := range got {
		if s.Quality != telemetry.Good {
			t.Fatalf("bad sample %v", s)
		}
		seen[s.Channel] = true
		switch s.Channel {
		case "volts":
			if math.Abs(s.Value.F-sim.DefaultSetPoint) > 0.5 {
				t.Fatalf("volts %v", s)
			}
		case "amps":
			if s.Value.F < 0.5 || s.Value.F > 2 {
				t.Fatalf("amps %v", s)
			}
		case "serial":
			if s.Value.S != sim.Serial("psu") {
				t.Fatalf("serial %v, want %s", s, sim.Serial("psu"))
			}
		case "errors":
			if s.Value.I != 0 {
				t.Fatalf("errors %v, want 0", s)
			}
		}
	}
	if !seen["serial"] {
		r.until("a serial sample", func(s telemetry.Sample) bool { return s.Channel == "serial" && s.Quality == telemetry.Good })
	}
	info := r.waitState("psu", devicemgr.Connected)
	if info.Tags["area"] != "vacuum" {
		t.Fatalf("tags %v", info.Tags)
	}
}

// TestReplyThatDoesNotFitPutsTheDeviceOutOfStep: a reply that does not fit its
// channel (here `0,"No error"` for a %d) is never published as GOOD, for that
// channel or any other of its line; the device is out of step, reconnects
// (counted) and every channel carries the reply in its error.
func TestReplyThatDoesNotFitPutsTheDeviceOutOfStep(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{Seed: 3})
	spec := fast(devicemgr.Spec{
		Name: "psu", Address: psu.Addr(), Driver: devicemgr.DriverSCPI, MaxJoin: 4,
		Channels: []devicemgr.ChannelSpec{
			{Name: "volts", Query: "MEAS:VOLT?", Period: 20 * time.Millisecond},
			{Name: "errors", Query: "SYST:ERR?", Reply: "%d", Type: "int", Period: 20 * time.Millisecond},
		},
	})
	r := start(t, spec)
	got := r.until("an out-of-step sample", func(s telemetry.Sample) bool {
		return s.Quality == telemetry.ParseError && strings.Contains(s.Err, "out of step") && strings.Contains(s.Err, `0,\"No error\"`)
	})
	for _, s := range got {
		if s.Quality == telemetry.Good {
			t.Fatalf("GOOD sample %v from a line whose reply did not fit", s)
		}
	}
	eventually.True(t, 15*time.Second, "out of step counted at each reconnect (twice)", func() bool {
		info, _ := r.mgr.Get("psu")
		return info.OutOfStep >= 2
	})
	if info, _ := r.mgr.Get("psu"); !strings.Contains(info.LastError, "out of step") {
		t.Fatalf("last error %q", info.LastError)
	}
}

func TestSCPIReconnectReRunsInitAndReadBackSettles(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	spec.Init = []string{"*CLS", "SOUR:VOLT 7"}
	spec.Channels = append(spec.Channels, devicemgr.ChannelSpec{Name: "setpoint", Query: "SOUR:VOLT?", Period: 100 * time.Millisecond})
	spec.Commands = append(spec.Commands,
		devicemgr.CommandSpec{Name: "set_checked", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v"}},
			Readback: "setpoint", Tolerance: 0.001},
		// The current follows the voltage over a 10 Ω load: it never reads the volts.
		devicemgr.CommandSpec{Name: "set_never", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v"}},
			Readback: "current", Tolerance: 0.001, Settle: 300 * time.Millisecond},
	)
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	if sp := psu.SetPoint(); sp != 7 {
		t.Fatalf("set-point %v after init, want 7", sp)
	}
	ctx := context.Background()
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_checked", Args: []string{"9"}}); err != nil {
		t.Fatalf("set_checked: %v", err)
	}
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_never", Args: []string{"10"}}); !errors.Is(err, devicemgr.ErrNotSettled) {
		t.Fatalf("set_never: err %v, want ErrNotSettled", err)
	}
	// A dropped connection reconnects and runs init again.
	psu.Drop()
	r.until("a DISCONNECTED or COMM_ERROR sample", func(s telemetry.Sample) bool { return s.Quality != telemetry.Good })
	eventually.Truef(t, 15*time.Second, func() string { return fmt.Sprintf("set-point %v after reconnect, want 7 from init", psu.SetPoint()) },
		func() bool { return psu.SetPoint() == 7 })
	r.waitState("psu", devicemgr.Connected)
}

func TestLinesCSVAndJSONSeeEveryLine(t *testing.T) {
	bal := simtest.Balance(t, "bal", sim.Options{PushHz: 50})
	th := simtest.Thermometer(t, "thermo", sim.Options{PushHz: 50})
	r := start(t,
		fast(devicemgr.Spec{Name: "bal", Address: bal.Addr(), Driver: devicemgr.DriverLines, LineFormat: devicemgr.LinesCSV,
			Channels: []devicemgr.ChannelSpec{{Name: "mass", Key: "mass_g", Unit: "g"}, {Name: "stable", Type: "bool"}, {Name: "n", Key: "seq", Type: "int"}}}),
		fast(devicemgr.Spec{Name: "thermo", Address: th.Addr(), Driver: devicemgr.DriverLines, LineFormat: devicemgr.LinesJSON,
			Channels: []devicemgr.ChannelSpec{{Name: "temp", Key: "temp_c"}, {Name: "probe", Type: "string"}, {Name: "n", Key: "seq", Type: "int"}}}),
	)
	got := r.until("10 lines of each", func(s telemetry.Sample) bool {
		return s.Channel == "n" && s.Seq >= 10 && (s.Device == "bal" || s.Device == "thermo")
	})
	got = append(got, r.until("10 lines of the other", func(s telemetry.Sample) bool { return s.Channel == "n" && s.Seq >= 10 })...)
	last := map[string]int64{}
	for _, s := range got {
		if s.Quality != telemetry.Good {
			t.Fatalf("bad sample %v", s)
		}
		switch s.Channel {
		case "n":
			if s.Value.I != last[s.Device]+1 {
				t.Fatalf("%s: pushed seq %d after %d: a line was missed", s.Device, s.Value.I, last[s.Device])
			}
			last[s.Device] = s.Value.I
		case "mass":
			if math.Abs(s.Value.F-100) > 0.1 {
				t.Fatalf("mass %v", s)
			}
		case "probe":
			if s.Value.S != "PT100" {
				t.Fatalf("probe %v", s)
			}
		}
	}
	th.UpdateFaults(func(f *sim.Faults) { f.Garbage = true })
	r.until("PARSE_ERROR from the thermometer", func(s telemetry.Sample) bool {
		return s.Device == "thermo" && s.Quality == telemetry.ParseError && strings.Contains(s.Err, "garbage")
	})
}

func tcSpec(addr string) devicemgr.Spec {
	min0, max200 := 0.0, 200.0
	return fast(devicemgr.Spec{
		Name: "tc", Address: addr, Driver: devicemgr.DriverModbus,
		Channels: []devicemgr.ChannelSpec{
			{Name: "temp", Register: "input", Addr: sim.TCProcessReg, DataType: "float32", Period: 20 * time.Millisecond, Unit: "degC"},
			{Name: "setpoint", Register: "holding", Addr: sim.TCSetPointReg, Scale: 0.1, Period: 50 * time.Millisecond, Unit: "degC"},
			{Name: "heater", Register: "input", Addr: sim.TCHeaterReg, Scale: 0.1, Period: 50 * time.Millisecond, Unit: "%"},
			{Name: "enabled", Register: "coil", Addr: sim.TCEnableCoil, Type: "bool", Period: 50 * time.Millisecond},
			{Name: "missing", Register: "holding", Addr: 99, Period: 100 * time.Millisecond},
			{Name: "sp_as_bool", Register: "holding", Addr: sim.TCSetPointReg, Type: "bool", Period: 100 * time.Millisecond},
		},
		Commands: []devicemgr.CommandSpec{
			{Name: "set_temp", Channel: "setpoint", Args: []devicemgr.ArgSpec{{Name: "degC", Min: min0, HasMin: true, Max: max200, HasMax: true}},
				Readback: "temp", Tolerance: 0.5, Settle: 10 * time.Second},
			{Name: "enable", Channel: "enabled", Args: []devicemgr.ArgSpec{{Name: "on", Type: "bool"}}},
		},
	})
}

func TestModbusReadsWritesAndFails(t *testing.T) {
	tc := simtest.Modbus(t, "tc", sim.Options{Seed: 4})
	r := start(t, tcSpec(tc.Addr()))
	got := r.until("5 temp samples", func(s telemetry.Sample) bool { return s.Channel == "temp" && s.Seq == 5 })
	got = append(got, r.until("a missing sample", func(s telemetry.Sample) bool { return s.Channel == "missing" })...)
	got = append(got, r.until("a sp_as_bool sample", func(s telemetry.Sample) bool { return s.Channel == "sp_as_bool" })...)
	for _, s := range got {
		switch s.Channel {
		case "sp_as_bool":
			if s.Quality != telemetry.ParseError || !strings.Contains(s.Err, `"250"`) {
				t.Fatalf("set-point read as a bool: %v, want PARSE_ERROR keeping the value", s)
			}
		case "missing":
			if s.Quality != telemetry.CommError || !strings.Contains(s.Err, "illegal data address") {
				t.Fatalf("missing register: %v, want COMM_ERROR naming the exception", s)
			}
		case "setpoint":
			if s.Quality != telemetry.Good || s.Value.F != sim.TCDefaultSetPoint {
				t.Fatalf("setpoint %v", s)
			}
		case "enabled":
			if s.Quality != telemetry.Good || !s.Value.B {
				t.Fatalf("enabled %v", s)
			}
		default:
			if s.Quality != telemetry.Good {
				t.Fatalf("bad sample %v", s)
			}
		}
	}
	ctx := context.Background()
	if _, err := r.mgr.Send(ctx, "tc", devicemgr.Command{Name: "set_temp", Args: []string{"26"}}); err != nil {
		t.Fatalf("set_temp with read-back: %v", err)
	}
	if sp := tc.TemperatureSetPoint(); sp != 26 {
		t.Fatalf("set-point %v, want 26", sp)
	}
	if _, err := r.mgr.Send(ctx, "tc", devicemgr.Command{Name: "set_temp", Args: []string{"250"}}); !errors.Is(err, devicemgr.ErrBadArgument) {
		t.Fatalf("out of range: %v", err)
	}
	if _, err := r.mgr.Send(ctx, "tc", devicemgr.Command{Raw: "x"}); !errors.Is(err, devicemgr.ErrBadArgument) {
		t.Fatalf("raw line to modbus: %v", err)
	}
	if _, err := r.mgr.Send(ctx, "tc", devicemgr.Command{Name: "enable", Args: []string{"off"}}); err != nil {
		t.Fatal(err)
	}
	r.until("enabled false", func(s telemetry.Sample) bool {
		return s.Channel == "enabled" && s.Quality == telemetry.Good && !s.Value.B
	})

	// A hung controller times out and the device reconnects once it answers again.
	tc.UpdateFaults(func(f *sim.Faults) { f.Hang = true })
	r.until("TIMEOUT", func(s telemetry.Sample) bool { return s.Quality == telemetry.Timeout })
	tc.UpdateFaults(func(f *sim.Faults) { f.Hang = false; f.Garbage = true })
	r.until("COMM_ERROR from garbage", func(s telemetry.Sample) bool {
		return s.Quality == telemetry.CommError && s.Channel != "missing"
	})
	tc.SetFaults(sim.Faults{})
	r.until("GOOD temp again", func(s telemetry.Sample) bool { return s.Channel == "temp" && s.Quality == telemetry.Good })
	if info := r.waitState("tc", devicemgr.Connected); info.Restarts < 1 {
		t.Fatalf("restarts %d", info.Restarts)
	}
}

func TestOverrunsAreCountedNotQueued(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	spec.ReplyTimeout = 5 * time.Second
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	// Each reply now takes longer than the 20 ms period.
	psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 60 * time.Millisecond })
	eventually.True(t, 15*time.Second, "3 overruns", func() bool { info, _ := r.mgr.Get("psu"); return info.Overruns >= 3 })
	// Skipped, not queued: a command still gets through promptly (within a
	// few slow round trips, far below the backlog a queue would build).
	psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 0 })
	if _, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Raw: "*IDN?"}); err != nil {
		t.Fatal(err)
	}
}

func TestLockTimeoutAbandonsAQueuedCommand(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	spec.LockTimeout = 100 * time.Millisecond
	spec.Commands = append(spec.Commands, devicemgr.CommandSpec{
		Name: "set_never", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v"}},
		Readback: "current", Tolerance: 0.001, Settle: 3 * time.Second, Role: "operator",
	})
	r := start(t, spec)
	info := r.waitState("psu", devicemgr.Connected)
	if info.CommandRoles["set_never"] != "operator" {
		t.Fatalf("roles %v", info.CommandRoles)
	}
	ctx := context.Background()
	busy := make(chan error, 1)
	go func() {
		_, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_never", Args: []string{"5"}})
		busy <- err
	}()
	// Wait until the lane is held by the settling write.
	eventually.True(t, 15*time.Second, "set_never to run", func() bool { return psu.SetPoint() == 5 })
	if _, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"9"}}); !errors.Is(err, devicemgr.ErrTimeout) {
		t.Fatalf("queued behind a busy lane: err %v, want ErrTimeout", err)
	}
	if err := <-busy; !errors.Is(err, devicemgr.ErrNotSettled) {
		t.Fatalf("set_never: %v", err)
	}
	// The abandoned command was never sent.
	if sp := psu.SetPoint(); sp != 5 {
		t.Fatalf("set-point %v: the abandoned command ran", sp)
	}
}

func TestLinesCommandsAndInitReRunOnReconnect(t *testing.T) {
	bal := simtest.Balance(t, "bal", sim.Options{PushHz: 50})
	r := start(t, fast(devicemgr.Spec{
		Name: "bal", Address: bal.Addr(), Driver: devicemgr.DriverLines, LineFormat: devicemgr.LinesCSV,
		Init:     []string{"SIR"}, // "send immediately, repeat"
		Channels: []devicemgr.ChannelSpec{{Name: "mass", Key: "mass_g"}},
		Commands: []devicemgr.CommandSpec{{Name: "tare", Template: "T"}},
	}))
	r.waitState("bal", devicemgr.Connected)
	waitReceived := func(n uint64) {
		t.Helper()
		eventually.Truef(t, 15*time.Second, func() string { return fmt.Sprintf("balance received %d lines, want %d", bal.Counters().Received, n) },
			func() bool { return bal.Counters().Received >= n })
	}
	waitReceived(1) // init
	if _, err := r.mgr.Send(context.Background(), "bal", devicemgr.Command{Name: "tare"}); err != nil {
		t.Fatal(err)
	}
	waitReceived(2) // the command
	bal.Drop()
	r.until("a bad sample after the drop", func(s telemetry.Sample) bool { return s.Quality != telemetry.Good })
	waitReceived(3) // init again on the new connection
	r.until("GOOD mass again", func(s telemetry.Sample) bool { return s.Quality == telemetry.Good })
}

// TestAbortCommandWaitingForItsReply: an operator's abort reaches the command
// in progress through the mailbox's control lane while the device waits for a
// reply that does not come: the caller gets ErrAborted at once (not after the
// 10 s reply timeout), the device reconnects so a late reply cannot answer
// a later request, and works again.
func TestAbortCommandWaitingForItsReply(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	for i := range spec.Channels {
		spec.Channels[i].Period = time.Hour // polled once on connect, then idle
	}
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	if got, err := r.mgr.Abort("psu", "idle"); got != "" || err != nil {
		t.Fatalf("Abort while idle = %q, %v; want nothing aborted", got, err)
	}
	psu.UpdateFaults(func(f *sim.Faults) { f.Hang = true })
	done := make(chan error, 1)
	sent := time.Now()
	go func() {
		_, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Raw: "SOUR:VOLT?", Timeout: 10 * time.Second})
		done <- err
	}()
	var d *devicemgr.Device
	for _, x := range r.mgr.Devices() {
		d = x
	}
	f := eventually.Value(t, 15*time.Second, "the command to start", d.Mailbox().InProgress)
	if !strings.Contains(f.String(), `raw \"SOUR:VOLT?\"`) {
		t.Fatalf("in progress: %s", f)
	}
	got, err := r.mgr.Abort("psu", "operator pressed stop")
	if err != nil || got != `raw "SOUR:VOLT?"` {
		t.Fatalf("Abort = %q, %v", got, err)
	}
	err = <-done
	if !errors.Is(err, supervisor.ErrAborted) || !strings.Contains(err.Error(), "operator pressed stop") {
		t.Fatalf("aborted command: %v, want ErrAborted with the reason", err)
	}
	if waited := time.Since(sent); waited > 5*time.Second {
		t.Fatalf("the aborted command returned after %v, not at once", waited)
	}
	psu.UpdateFaults(func(f *sim.Faults) { f.Hang = false })
	eventually.True(t, 15*time.Second, "a reconnect after the abort", func() bool {
		info, _ := r.mgr.Get("psu")
		return info.Restarts > 0 && info.State == devicemgr.Connected
	})
	if _, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"7"}}); err != nil || psu.SetPoint() != 7 {
		t.Fatalf("after the abort: %v, set-point %v", err, psu.SetPoint())
	}
	if _, err := r.mgr.Abort("nope", ""); !errors.Is(err, devicemgr.ErrNotFound) {
		t.Fatalf("Abort of an unknown device: %v", err)
	}
}

// TestAbortSettlingWrite: an abort ends a write's read-back wait at once with
// ErrAborted (not ErrNotSettled after the settle time).
func TestAbortSettlingWrite(t *testing.T) {
	psu := simtest.SCPI(t, "psu", sim.Options{})
	spec := psuSpec("psu", psu.Addr())
	spec.Commands = append(spec.Commands, devicemgr.CommandSpec{
		Name: "set_never", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v"}},
		Readback: "current", Tolerance: 0.001, Settle: 20 * time.Second,
	})
	r := start(t, spec)
	r.waitState("psu", devicemgr.Connected)
	done := make(chan error, 1)
	sent := time.Now()
	go func() {
		_, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_never", Args: []string{"5"}})
		done <- err
	}()
	eventually.True(t, 15*time.Second, "set_never to run", func() bool { return psu.SetPoint() == 5 })
	if got, err := r.mgr.Abort("psu", "ramp cancelled"); err != nil || got != "set_never 5" {
		t.Fatalf("Abort = %q, %v", got, err)
	}
	err := <-done
	if !errors.Is(err, supervisor.ErrAborted) || errors.Is(err, devicemgr.ErrNotSettled) {
		t.Fatalf("aborted write: %v, want ErrAborted", err)
	}
	if waited := time.Since(sent); waited > 10*time.Second {
		t.Fatalf("returned after %v: the settle wait was not aborted", waited)
	}
	// If the abort caught a read-back query on the wire, the device reconnects;
	// either way it takes commands again.
	eventually.True(t, 15*time.Second, "the device to take commands again after the abort", func() bool {
		_, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"3"}})
		if err != nil && !errors.Is(err, devicemgr.ErrNotConnected) {
			t.Fatalf("after the abort: %v", err)
		}
		return err == nil
	})
}
