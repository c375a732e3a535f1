//go:build unix

package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// fault is what the fault-injection test does to one instrument.
type fault string

const (
	healthy fault = "healthy"
	refuse  fault = "refuse"  // dials are refused (see refusingAddr)
	drop    fault = "drop"    // its connection is dropped three times
	hang    fault = "hang"    // accepts, never replies
	garbage fault = "garbage" // replies with garbage
	slow    fault = "slow"    // replies 300 ms late, within the reply timeout
	flap    fault = "flap"    // drops and sends garbage, then recovers, over and over
)

// faultPlan assigns 20 of the 200 instruments a fault, spread over the fleet.
var faultPlan = []struct {
	f fault
	n int
}{{refuse, 4}, {drop, 3}, {hang, 3}, {garbage, 4}, {slow, 3}, {flap, 3}}

// faultConfig polls voltage and current of each instrument every 100 ms in one
// request line, with no identify query, so that every query an instrument
// answers is a poll and should become one good sample. The reply timeout is
// 1 s for the hanging instruments (their fault is to be seen) and a generous
// 10 s for the others, so that a loaded 2-core machine stalling a goroutine
// cannot pass for a fault.
func faultConfig(fleet *sim.Fleet, plan map[string]fault) *config.Config {
	c := &config.Config{}
	for _, in := range fleet.Instruments() {
		timeout := 10 * time.Second
		if plan[in.Name()] == hang {
			timeout = time.Second
		}
		c.Devices = append(c.Devices, config.Device{
			Name: in.Name(), Address: in.Addr(),
			Protocol: config.Protocol{
				Driver: "scpi", Identify: "-",
				ReplyTimeout: config.Duration(timeout),
				Channels: []config.Channel{
					{Name: "voltage", Query: "MEAS:VOLT?", Period: config.Duration(100 * time.Millisecond)},
					{Name: "current", Query: "MEAS:CURR?", Period: config.Duration(100 * time.Millisecond)},
				},
			},
		})
	}
	return c
}

// TestFaultInjection runs 200 simulated instruments of which 20 refuse, drop,
// hang, send garbage, reply slowly or flap. Failures stay inside each device
// process (no process in the tree restarts); every healthy device delivers as
// many good samples as its instrument answered queries (within 1 %, counted on
// both sides, so a loaded machine changes how many, not whether they match) and
// as its 10 Hz schedule asks for (every nominal slot polled or counted as an
// overrun);
// the faulty ones show the right state and quality; after stop no connection
// and no goroutine is left (goleak in TestMain).
func TestFaultInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("200 instruments: not in -short")
	}
	const minSamples = 250 // per healthy device; 1 % of it exceeds one request line in flight at stop
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 200, Seed: 42})
	ins := fleet.Instruments()
	plan := make(map[string]fault, len(ins))
	for _, in := range ins {
		plan[in.Name()] = healthy
	}
	k := 0
	for _, p := range faultPlan {
		for range p.n {
			plan[ins[5+k*9].Name()] = p.f // every 9th from the 6th: spread, deterministic
			k++
		}
	}
	byFault := map[fault][]*sim.Instrument{}
	for _, in := range ins {
		byFault[plan[in.Name()]] = append(byFault[plan[in.Name()]], in)
	}
	if len(byFault[healthy]) != 180 {
		t.Fatalf("plan has %d healthy instruments, want 180", len(byFault[healthy]))
	}
	set := func(in *sim.Instrument, f sim.Faults) {
		t.Helper()
		if err := in.SetFaults(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range byFault[hang] {
		set(in, sim.Faults{Hang: true})
	}
	for _, in := range byFault[garbage] {
		set(in, sim.Faults{Garbage: true})
	}
	for _, in := range byFault[slow] {
		set(in, sim.Faults{Slow: 300 * time.Millisecond})
	}

	cfg := faultConfig(fleet, plan)
	for i := range cfg.Devices {
		// The refusing devices dial a port held by a socket that never listens,
		// not their instrument with its Refuse fault: that closes its listener,
		// and another test's instrument may take the port meanwhile and answer.
		if plan[cfg.Devices[i].Name] == refuse {
			cfg.Devices[i].Address = refusingAddr(t)
		}
	}
	a := newTestApp(t, cfg)
	count := countSamples(a.hub)
	defer count.Close()
	stop := serveApp(t, a)

	connected := func(f fault) func() bool {
		return func() bool {
			for _, in := range byFault[f] {
				if info, _ := a.devices.Get(in.Name()); info.State != devicemgr.Connected {
					return false
				}
			}
			return true
		}
	}
	eventually.True(t, 60*time.Second, "all healthy, dropping, slow and flapping devices connected", func() bool {
		return connected(healthy)() && connected(drop)() && connected(slow)() && connected(flap)()
	})

	// Drop and flap while the healthy devices run up their counts.
	flapDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := 0; ; round++ {
			if round < 3 {
				for _, in := range byFault[drop] {
					in.Drop()
				}
			}
			for _, in := range byFault[flap] {
				// Not Refuse: clearing it must listen on the same port again,
				// which another socket may have taken meanwhile.
				_ = in.SetFaults(sim.Faults{Garbage: true})
				in.Drop()
			}
			select {
			case <-flapDone:
				return
			case <-time.After(300 * time.Millisecond):
			}
			for _, in := range byFault[flap] {
				_ = in.SetFaults(sim.Faults{})
			}
			select {
			case <-flapDone:
				return
			case <-time.After(time.Second):
			}
		}
	}()
	eventually.True(t, 120*time.Second, fmt.Sprintf("every healthy device has %d good samples", minSamples), func() bool {
		for _, in := range byFault[healthy] {
			if good, _, _, _ := count.counts(in.Name(), telemetry.Good); good < minSamples {
				return false
			}
		}
		return true
	})
	close(flapDone)
	wg.Wait()
	for _, in := range byFault[flap] {
		set(in, sim.Faults{}) // the flapping ones recover for good
	}

	// States and qualities while running.
	wantBad := map[fault]telemetry.Quality{refuse: telemetry.CommError, hang: telemetry.Timeout, garbage: telemetry.ParseError}
	for f, q := range wantBad {
		for _, in := range byFault[f] {
			name := in.Name()
			describe := func() string {
				good, bad, latest, _ := count.counts(name, q)
				info, _ := a.devices.Get(name)
				return fmt.Sprintf("%s (%s) reports %s; now %d good, %d %s, latest %s, state %s, %d reconnections, last error %q",
					name, f, q, good, bad, q, latest, info.State, info.Restarts, info.LastError)
			}
			eventually.Truef(t, 30*time.Second, describe, func() bool {
				good, bad, latest, any := count.counts(name, q)
				info, _ := a.devices.Get(name)
				if f == garbage {
					// The connection works, the data does not: every sample
					// PARSE_ERROR, and since garbage may be a reply meant for
					// another query, the device resynchronises (reconnects).
					return any && good == 0 && bad > 0 && latest == q && info.OutOfStep > 0
				}
				return any && good == 0 && bad > 0 && latest == q && info.State != devicemgr.Connected && info.Restarts > 0 && info.LastError != ""
			})
		}
	}
	for _, f := range []fault{drop, flap, slow} {
		for _, in := range byFault[f] {
			name := in.Name()
			describe := func() string {
				_, _, latest, _ := count.counts(name, telemetry.Good)
				info, _ := a.devices.Get(name)
				return fmt.Sprintf("%s (%s) connected and good; now latest %s, state %s, last error %q", name, f, latest, info.State, info.LastError)
			}
			eventually.Truef(t, 60*time.Second, describe, func() bool {
				_, _, latest, _ := count.counts(name, telemetry.Good)
				info, _ := a.devices.Get(name)
				return info.State == devicemgr.Connected && latest == telemetry.Good
			})
			info, _ := a.devices.Get(name)
			if f != slow && (info.Restarts == 0 || in.Counters().Accepted < 2) {
				t.Errorf("%s (%s): %d reconnections, %d connections accepted; want several", name, f, info.Restarts, in.Counters().Accepted)
			}
			if f == slow && (info.Restarts != 0 || count.badTotal(name) != 0) {
				t.Errorf("%s (slow): %d reconnections, %d bad samples; want none", name, info.Restarts, count.badTotal(name))
			}
		}
	}
	for _, in := range byFault[healthy] {
		info, _ := a.devices.Get(in.Name())
		if info.State != devicemgr.Connected || info.Restarts != 0 || count.badTotal(in.Name()) != 0 {
			t.Errorf("healthy %s: state %s, %d reconnections, %d bad samples; want connected, 0, 0",
				in.Name(), info.State, info.Restarts, count.badTotal(in.Name()))
		}
	}
	// Failures are states inside the device processes: nothing in the tree restarted.
	tree := a.root.Snapshot()
	devs, _ := tree.Find("devices")
	if devs.State != supervisor.Running || devs.Restarts != 0 || len(devs.Children) != 200 {
		t.Fatalf("devices supervisor %s, %d restarts, %d children; want running, 0, 200", devs.State, devs.Restarts, len(devs.Children))
	}
	for _, d := range devs.Children {
		if d.State != supervisor.Running || d.Restarts != 0 {
			t.Errorf("device process %s: %s with %d restarts, want running with 0", d.ID, d.State, d.Restarts)
		}
		// The tree shows the failure as the process's status.
		switch f := plan[d.ID]; {
		case f == healthy && d.Status != "connected":
			t.Errorf("healthy %s: status %q, want \"connected\"", d.ID, d.Status)
		case f == refuse && !strings.Contains(d.Status, "connection refused"):
			t.Errorf("refusing %s: status %q, want it to say connection refused", d.ID, d.Status)
		}
	}

	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	count.Close()

	// Counted, not timed: each healthy device published one good sample per
	// query its instrument answered, less at most the request in flight at stop.
	var short []string
	total, maxGap := 0, 0
	for _, in := range byFault[healthy] {
		good, _, latest, _ := count.counts(in.Name(), telemetry.Good)
		answered := int(in.Counters().Queries)
		total += good
		maxGap = max(maxGap, answered-good)
		if good < minSamples || answered-good < 0 || float64(answered-good) > 0.01*float64(answered) {
			short = append(short, fmt.Sprintf("%s: %d good samples for %d answered queries", in.Name(), good, answered))
		}
		if latest != telemetry.Disconnected {
			t.Errorf("%s: last sample %s after stop, want DISCONNECTED", in.Name(), latest)
		}
	}
	t.Logf("180 healthy devices: %d good samples; largest gap to the instrument's answered queries: %d", total, maxGap)
	sort.Strings(short)
	if len(short) > 0 {
		t.Errorf("%d healthy devices off by more than 1 %%:\n%v", len(short), short)
	}

	// Counted against the nominal count too: answered queries cannot tell a
	// device that polls too seldom (its instrument answers what it is asked).
	// Over the span of its good samples a healthy device polls once per 100 ms
	// slot; a slot it misses is an overrun, counted (a poll late by more than
	// a period skips its slot), so polls + overruns cover every slot, and no
	// slot is polled twice.
	var slow []string
	worst := 1.0
	for _, in := range byFault[healthy] {
		p := count.pollsOf(in.Name())
		info, _ := a.devices.Get(in.Name())
		slots := int(time.Duration(p.last-p.first)/(100*time.Millisecond)) + 1
		covered := p.n + 2*int(info.Overruns) // a poll late by 2 periods skips 2 slots
		worst = min(worst, float64(covered)/float64(slots))
		if float64(covered) < 0.97*float64(slots) || p.n > slots+1 {
			slow = append(slow, fmt.Sprintf("%s: %d polls and %d overruns over %d nominal slots", in.Name(), p.n, info.Overruns, slots))
		}
	}
	t.Logf("polls and overruns cover at least %.1f %% of every healthy device's nominal slots", 100*worst)
	sort.Strings(slow)
	if len(slow) > 0 {
		t.Errorf("%d healthy devices did not poll at their 10 Hz:\n%v", len(slow), slow)
	}

	// Nothing left open: every instrument sees its connections closed, and the
	// tree is stopped.
	eventually.True(t, 30*time.Second, "no instrument has an open connection", func() bool {
		for _, in := range ins {
			if in.Counters().Active != 0 {
				return false
			}
		}
		return true
	})
	if st := a.root.Snapshot().State; st != supervisor.Stopped {
		t.Errorf("root is %s after stop, want stopped", st)
	}
}

// sampleCounter counts every sample the hub publishes, per device, losslessly.
type sampleCounter struct {
	sub     *telemetry.Subscription
	stop    chan struct{}
	done    chan struct{}
	closing sync.Once

	mu     sync.Mutex
	good   map[string]int
	bad    map[string]map[telemetry.Quality]int
	latest map[string]telemetry.Quality
	// polls is, per device, its good "voltage" samples: one per poll.
	polls map[string]*pollSpan
}

// pollSpan is what a device's good samples of one channel say of its polling:
// how many, and the time of the first and the last.
type pollSpan struct {
	n           int
	first, last int64
}

func countSamples(hub *telemetry.Hub) *sampleCounter {
	c := &sampleCounter{
		sub:    hub.Subscribe(telemetry.SubscribeOptions{Name: "test-count", Policy: telemetry.Lossless}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		good:   map[string]int{},
		bad:    map[string]map[telemetry.Quality]int{},
		latest: map[string]telemetry.Quality{},
		polls:  map[string]*pollSpan{},
	}
	go c.run()
	return c
}

// Close stops counting after everything published so far was counted. It is
// idempotent.
func (c *sampleCounter) Close() {
	c.closing.Do(func() {
		c.sub.Close()
		close(c.stop)
	})
	<-c.done
}

func (c *sampleCounter) run() {
	defer close(c.done)
	var buf []telemetry.Sample
	for {
		select {
		case <-c.sub.Ready():
		case <-c.stop:
			c.add(c.sub.Drain(buf[:0], 0))
			return
		}
		buf = c.sub.Drain(buf[:0], 4096)
		c.add(buf)
	}
}

func (c *sampleCounter) add(buf []telemetry.Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range buf {
		s := &buf[i]
		c.latest[s.Device] = s.Quality
		if s.Quality == telemetry.Good {
			c.good[s.Device]++
			if s.Channel == "voltage" {
				p := c.polls[s.Device]
				if p == nil {
					p = &pollSpan{first: s.TimeNs}
					c.polls[s.Device] = p
				}
				p.n++
				p.last = s.TimeNs
			}
			continue
		}
		if c.bad[s.Device] == nil {
			c.bad[s.Device] = map[telemetry.Quality]int{}
		}
		c.bad[s.Device][s.Quality]++
	}
}

// counts returns a device's good samples, its bad ones of quality q, and the
// quality of its latest sample.
func (c *sampleCounter) counts(dev string, q telemetry.Quality) (good, bad int, latest telemetry.Quality, any bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	latest, any = c.latest[dev]
	return c.good[dev], c.bad[dev][q], latest, any
}

// pollsOf returns a device's good voltage samples and their span.
func (c *sampleCounter) pollsOf(dev string) pollSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.polls[dev]; p != nil {
		return *p
	}
	return pollSpan{}
}

// badTotal returns how many bad samples of any quality a device published.
func (c *sampleCounter) badTotal(dev string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.bad[dev] {
		n += k
	}
	return n
}
