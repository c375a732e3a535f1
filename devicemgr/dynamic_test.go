package devicemgr_test

import (
	"context"
	"errors"
	"slices"
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

// supervised runs a manager's devices under a real devices supervisor, as the
// server does, until the test ends, and collects what they publish.
func supervised(t *testing.T, opts devicemgr.Options, specs ...devicemgr.Spec) *rig {
	t.Helper()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "test", Policy: telemetry.Lossless})
	mgr, err := devicemgr.New(specs, hub, opts)
	if err != nil {
		t.Fatal(err)
	}
	sup := supervisor.New("devices", supervisor.Options{MaxRestarts: 100, MaxTime: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sup.Serve(ctx) }()
	if err := mgr.Start(sup); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("devices supervisor: %v", err)
		}
		sub.Close()
	})
	return &rig{t: t, hub: hub, sub: sub, mgr: mgr}
}

func TestCompareSaysWhatCanChangeInPlace(t *testing.T) {
	base := psuSpec("psu", "127.0.0.1:5025")
	base.Tags = map[string]string{"area": "a"}
	change := func(f func(s *devicemgr.Spec)) devicemgr.Spec {
		s := psuSpec("psu", "127.0.0.1:5025")
		s.Tags = map[string]string{"area": "a"}
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name string
		spec devicemgr.Spec
		want devicemgr.Change
	}{
		{"same", change(func(*devicemgr.Spec) {}), devicemgr.Unchanged},
		{"defaults written out", change(func(s *devicemgr.Spec) { s.ReplyTimeout, s.LockTimeout = 300*time.Millisecond, 5*time.Second }), devicemgr.Unchanged},
		{"tags", change(func(s *devicemgr.Spec) { s.Tags = map[string]string{"area": "b"} }), devicemgr.InPlace},
		{"unit", change(func(s *devicemgr.Spec) { s.Channels[0].Unit = "V" }), devicemgr.InPlace},
		{"model name", change(func(s *devicemgr.Spec) { s.Model = "other" }), devicemgr.InPlace},
		{"period", change(func(s *devicemgr.Spec) { s.Channels[0].Period = time.Second }), devicemgr.Restart},
		{"address", change(func(s *devicemgr.Spec) { s.Address = "127.0.0.1:5026" }), devicemgr.Restart},
		{"a channel more", change(func(s *devicemgr.Spec) {
			s.Channels = append(s.Channels, devicemgr.ChannelSpec{Name: "t", Query: "T?", Period: time.Second})
		}), devicemgr.Restart},
		{"command template", change(func(s *devicemgr.Spec) { s.Commands[0].Template = "VOLT {volts}" }), devicemgr.Restart},
		{"tags and period", change(func(s *devicemgr.Spec) { s.Tags = nil; s.Channels[0].Period = time.Second }), devicemgr.Restart},
	} {
		if got := devicemgr.Compare(base, tc.spec); got != tc.want {
			t.Errorf("%s: Compare = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestApplyChangesOnlyWhatChanged applies a new set of devices to running
// ones: the unchanged device and the one retagged in place keep their
// connection and their sequence numbers without a gap (the simulator counts
// one connection each); the changed one reconnects with its new spec and
// goes on numbering; the removed one publishes its final state; the new one
// streams.
func TestApplyChangesOnlyWhatChanged(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 5, Seed: 3})
	// A reply timeout that a loaded machine does not reach (at 300 ms an
	// untouched device timed out once at a load of 10 on 2 cores): the test
	// is about what a reload changes, not about timeouts.
	spec := func(n string) devicemgr.Spec {
		s := psuSpec(n, fleet.Instrument(n).Addr())
		s.ReplyTimeout = 2 * time.Second
		return s
	}
	specs := []devicemgr.Spec{spec("psu-01"), spec("psu-02"), spec("psu-03"), spec("psu-04")}
	r := supervised(t, devicemgr.Options{}, specs...)
	for _, s := range specs {
		r.waitState(s.Name, devicemgr.Connected)
	}
	r.until("psu-03 polled a few times", func(s telemetry.Sample) bool { return s.Device == "psu-03" && s.Seq >= 5 })

	next := []devicemgr.Spec{spec("psu-05"), spec("psu-01"), spec("psu-02"), spec("psu-03")}
	next[2].Tags = map[string]string{"area": "vacuum"}
	next[2].Channels[0].Unit = "V"
	next[3].Channels[2].Period = 100 * time.Millisecond
	plan, err := r.mgr.Plan(next)
	if err != nil {
		t.Fatal(err)
	}
	want := devicemgr.Plan{Added: []string{"psu-05"}, Removed: []string{"psu-04"}, Restarted: []string{"psu-03"},
		Updated: []string{"psu-02"}, Unchanged: []string{"psu-01"}}
	if !equalPlans(plan, want) {
		t.Fatalf("Plan = %+v, want %+v", plan, want)
	}
	applied, err := r.mgr.Apply(next)
	if err != nil || !equalPlans(applied, want) {
		t.Fatalf("Apply = %+v, %v; want %+v", applied, err, want)
	}

	seen := r.until("psu-05 polled", func(s telemetry.Sample) bool { return s.Device == "psu-05" && s.Quality == telemetry.Good })
	seen = append(seen, r.until("psu-03 polled again", func(s telemetry.Sample) bool {
		return s.Device == "psu-03" && s.Quality == telemetry.Good && s.Channel == "output" && s.TimeNs > time.Now().Add(-50*time.Millisecond).UnixNano()
	})...)
	seen = append(seen, r.until("psu-01 and psu-02 go on", func(s telemetry.Sample) bool { return s.Device == "psu-02" && s.Seq > 60 })...)

	last := map[string]uint64{}
	var final *telemetry.Sample
	for i, s := range seen {
		key := s.Key()
		if l, ok := last[key]; ok && s.Seq != l+1 {
			t.Errorf("%s: seq %d after %d", key, s.Seq, l)
		}
		last[key] = s.Seq
		switch s.Device {
		case "psu-01", "psu-02":
			if s.Quality != telemetry.Good {
				t.Errorf("untouched device published %v", s)
			}
		case "psu-04":
			if s.Quality == telemetry.Disconnected {
				final = &seen[i]
			}
		}
	}
	if final == nil || !strings.Contains(final.Err, "device removed by reload") {
		t.Fatalf("removed device's final sample = %+v", final)
	}
	if _, err := r.mgr.Get("psu-04"); !errors.Is(err, devicemgr.ErrNotFound) {
		t.Fatalf("Get(psu-04) after removal: %v", err)
	}
	for name, want := range map[string]uint64{"psu-01": 1, "psu-02": 1, "psu-03": 2, "psu-05": 1} {
		if got := fleet.Instrument(name).Counters().Accepted; got != want {
			t.Errorf("%s: the simulator accepted %d connections, want %d", name, got, want)
		}
	}
	if n := fleet.Instrument("psu-04").Counters().Active; n != 0 {
		t.Errorf("psu-04: %d connections still open after removal", n)
	}
	info, _ := r.mgr.Get("psu-02")
	if info.Tags["area"] != "vacuum" || info.Channels[0].Unit != "V" || info.Restarts != 0 {
		t.Errorf("psu-02 after an in-place change: %+v", info)
	}
	if tags, ok := r.mgr.Tags("psu-02"); !ok || tags["area"] != "vacuum" {
		t.Errorf("Tags(psu-02) = %v, %v", tags, ok)
	}
	var names []string
	for _, i := range r.mgr.Devices() {
		names = append(names, i.Name())
	}
	if !slices.Equal(names, []string{"psu-05", "psu-01", "psu-02", "psu-03"}) {
		t.Errorf("devices in order %v", names)
	}
}

func equalPlans(a, b devicemgr.Plan) bool {
	return slices.Equal(a.Added, b.Added) && slices.Equal(a.Removed, b.Removed) && slices.Equal(a.Restarted, b.Restarted) &&
		slices.Equal(a.Updated, b.Updated) && slices.Equal(a.Unchanged, b.Unchanged)
}

// TestRemoveFailsQueuedCommandsAndLetsTheOneInProgressFinish removes a device
// while one command runs and another waits: the waiting one fails with
// ErrDeviceRemoved, the running one finishes, and the final state says why.
func TestRemoveFailsQueuedCommandsAndLetsTheOneInProgressFinish(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
		check func(t *testing.T, err error)
	}{
		{"finishes within the grace", 10 * time.Second, func(t *testing.T, err error) {
			if err != nil {
				t.Errorf("command in progress: %v, want it to finish", err)
			}
		}},
		{"aborted after the grace", time.Millisecond, func(t *testing.T, err error) {
			if !errors.Is(err, supervisor.ErrAborted) || !strings.Contains(err.Error(), "device removed by reload") {
				t.Errorf("command in progress: %v, want aborted with the reason", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			psu := simtest.SCPI(t, "psu", sim.Options{Seed: 4})
			spec := psuSpec("psu", psu.Addr())
			spec.ReplyTimeout = 5 * time.Second
			r := supervised(t, devicemgr.Options{StopGrace: tc.grace}, spec)
			r.waitState("psu", devicemgr.Connected)
			watch := r.mgr.WatchStates()
			defer watch.Close()
			if _, err := psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 300 * time.Millisecond }); err != nil {
				t.Fatal(err)
			}
			mb := r.mgr.Devices()[0].Mailbox()
			first, second := make(chan error, 1), make(chan error, 1)
			go func() {
				_, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"3"}})
				first <- err
			}()
			eventually.True(t, 0, "the first command in progress", func() bool {
				f, ok := mb.InProgress()
				return ok && f.Kind == supervisor.KindCall
			})
			go func() {
				_, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"4"}})
				second <- err
			}()
			eventually.True(t, 0, "the second command queued", func() bool { return mb.Depth() == 1 })

			if err := r.mgr.Remove("psu", nil); err != nil {
				t.Fatal(err)
			}
			if err := <-second; !errors.Is(err, devicemgr.ErrDeviceRemoved) {
				t.Errorf("queued command: %v, want ErrDeviceRemoved", err)
			}
			tc.check(t, <-first)
			if _, err := r.mgr.Send(context.Background(), "psu", devicemgr.Command{Name: "set_voltage", Args: []string{"5"}}); !errors.Is(err, devicemgr.ErrNotFound) {
				t.Errorf("command after removal: %v", err)
			}
			r.until("the final DISCONNECTED sample", func(s telemetry.Sample) bool {
				return s.Quality == telemetry.Disconnected && strings.Contains(s.Err, "device removed by reload")
			})
			var last devicemgr.Info
			for _, i := range watch.Take() {
				last = i
			}
			if !last.Removed || last.State != devicemgr.Stopped || !strings.Contains(last.LastError, "device removed by reload") {
				t.Errorf("final state %+v", last)
			}
			if got := r.hub.Latest(nil); len(got) != 0 {
				t.Errorf("the hub still holds %d latest values of the removed device", len(got))
			}
		})
	}
}
