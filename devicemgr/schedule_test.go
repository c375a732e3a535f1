package devicemgr_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// End-to-end scheduling over real sockets: devices share the Manager's poll
// scheduler, yet a device stuck waiting for a reply holds up no other.
func TestHungDeviceDelaysNoOtherDevicesPolls(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 3, Seed: 5})
	var specs []devicemgr.Spec
	for _, in := range fleet.Instruments() {
		spec := psuSpec(in.Name(), in.Addr())
		spec.ReplyTimeout = time.Minute // the hung device stays in its poll for the whole test
		specs = append(specs, spec)
	}
	r := start(t, specs...)
	for _, s := range specs {
		r.waitState(s.Name, devicemgr.Connected)
	}
	victim := fleet.Instrument("psu-02")
	if _, err := victim.UpdateFaults(func(f *sim.Faults) { f.Hang = true }); err != nil {
		t.Fatal(err)
	}
	// Wait until psu-02 is stuck: a stretch in which psu-01 polled ten times
	// and psu-02 published nothing.
	deadline := time.Now().Add(15 * time.Second)
	for stuck := false; !stuck; {
		if time.Now().After(deadline) {
			t.Fatal("psu-02 kept publishing after it hung")
		}
		n01, n02 := 0, 0
		r.until("ten polls of psu-01", func(s telemetry.Sample) bool {
			switch {
			case s.Device == "psu-02":
				n02++
			case s.Device == "psu-01" && s.Channel == "voltage":
				n01++
			}
			return n01 >= 10
		})
		stuck = n02 == 0
	}
	// The healthy devices each poll another 50 times (1 s at 20 ms) while
	// psu-02 is still waiting for its reply.
	n := map[string]int{}
	r.until("50 more polls of psu-01 and psu-03", func(s telemetry.Sample) bool {
		if s.Device == "psu-02" {
			t.Fatalf("sample of the hung device: %v", s)
		}
		if s.Quality != telemetry.Good {
			t.Fatalf("healthy device published %v", s)
		}
		if s.Channel == "voltage" {
			n[s.Device]++
		}
		return n["psu-01"] >= 50 && n["psu-03"] >= 50
	})
	if info, _ := r.mgr.Get("psu-02"); info.State != devicemgr.Connected {
		t.Fatalf("psu-02 is %s, want still Connected (waiting for its reply)", info.State)
	}
}

func TestConnectedGaugeFollowsSessions(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 2, Seed: 7})
	var specs []devicemgr.Spec
	for _, in := range fleet.Instruments() {
		specs = append(specs, psuSpec(in.Name(), in.Addr()))
	}
	reg := prometheus.NewRegistry()
	mgr, err := devicemgr.New(specs, telemetry.NewHub(nil), devicemgr.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	gauge := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "switchyard_devices_connected" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("switchyard_devices_connected not registered")
		return 0
	}
	waitGauge := func(want float64) {
		t.Helper()
		eventually.Truef(t, 15*time.Second, func() string { return fmt.Sprintf("switchyard_devices_connected = %v, want %v", gauge(), want) },
			func() bool { return gauge() == want })
	}
	if got := gauge(); got != 0 {
		t.Fatalf("gauge %v before any device runs", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range mgr.Devices() {
		wg.Go(func() { _ = d.Serve(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()
	waitGauge(2)

	// A device that loses its connection no longer counts; back up, it does.
	victim := fleet.Instrument("psu-01")
	if _, err := victim.UpdateFaults(func(f *sim.Faults) { f.Refuse = true }); err != nil {
		t.Fatal(err)
	}
	victim.Drop()
	waitGauge(1)
	if _, err := victim.UpdateFaults(func(f *sim.Faults) { f.Refuse = false }); err != nil {
		t.Fatal(err)
	}
	waitGauge(2)

	cancel()
	wg.Wait()
	if got := gauge(); got != 0 {
		t.Fatalf("gauge %v after every device stopped", got)
	}
}
