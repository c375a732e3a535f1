package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// connLog is the instruments' view: who was connected to which device when,
// like the simulator's connection log.
type connLog struct {
	mu    sync.Mutex
	spans map[string][]span // by device
}

type span struct {
	node        string
	start, stop time.Time // stop zero while connected
}

func newConnLog() *connLog { return &connLog{spans: map[string][]span{}} }

// devices is a node's fake device supervisor writing into the log.
type devices struct {
	node string
	log  *connLog
}

func (d devices) StartDevice(_ context.Context, name string, _ uint64) error {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	d.log.spans[name] = append(d.log.spans[name], span{node: d.node, start: time.Now()})
	return nil
}

func (d devices) StopDevice(_ context.Context, name string) error {
	d.log.mu.Lock()
	defer d.log.mu.Unlock()
	ss := d.log.spans[name]
	for i := len(ss) - 1; i >= 0; i-- {
		if ss[i].node == d.node && ss[i].stop.IsZero() {
			ss[i].stop = time.Now()
			return nil
		}
	}
	return fmt.Errorf("%s was not running on %s", name, d.node)
}

// overlaps lists every moment two nodes were connected to one device.
func (l *connLog) overlaps() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for dev, ss := range l.spans {
		ss = append([]span(nil), ss...)
		sort.Slice(ss, func(i, j int) bool { return ss[i].start.Before(ss[j].start) })
		for i := 1; i < len(ss); i++ {
			prev := ss[i-1]
			if prev.stop.IsZero() || ss[i].start.Before(prev.stop) {
				out = append(out, fmt.Sprintf("%s: %s connected at %v while %s was (until %v)", dev, ss[i].node, ss[i].start, prev.node, prev.stop))
			}
		}
	}
	return out
}

// owner returns the node connected to dev now and since when ("" if none).
func (l *connLog) owner(dev string) (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.spans[dev] {
		if s.stop.IsZero() {
			return s.node, s.start
		}
	}
	return "", time.Time{}
}

func (l *connLog) lastStop(dev, node string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t time.Time
	for _, s := range l.spans[dev] {
		if s.node == node && s.stop.After(t) {
			t = s.stop
		}
	}
	return t
}

type rig struct {
	t      *testing.T
	leases *memBucket
	nodes  *memBucket
	log    *connLog
	cat    []DeviceRef
	timing Timing
	run    map[string]*running
}

type running struct {
	node           *Node
	leases, nodesc *memClient
	cancel         context.CancelFunc
	done           chan error
}

func newRig(t *testing.T, devices int) *rig {
	tm := Timing{LeaseTTL: 3 * time.Second}.WithDefaults()
	return &rig{t: t, leases: newMemBucket(tm.LeaseTTL), nodes: newMemBucket(tm.LeaseTTL), log: newConnLog(),
		cat: fleet(devices, nil), timing: tm, run: map[string]*running{}}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (r *rig) start(name string, sel ...Selector) *running {
	r.t.Helper()
	lc, nc := r.leases.client(), r.nodes.client()
	n, err := newNode(lc, nc, devices{node: name, log: r.log}, r.cat,
		NodeOptions{Name: name, Selectors: sel, Timing: r.timing, Logger: quiet()})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{node: n, leases: lc, nodesc: nc, cancel: cancel, done: make(chan error, 1)}
	go func() { rn.done <- n.Serve(ctx) }()
	r.run[name] = rn
	return rn
}

func (r *rig) stopAll() {
	for _, rn := range r.run {
		rn.leases.Restore()
		rn.nodesc.Restore()
		rn.cancel()
		<-rn.done
	}
}

func (r *rig) owners() map[string]int {
	c := map[string]int{}
	for _, d := range r.cat {
		o, _ := r.log.owner(d.Name)
		c[o]++
	}
	return c
}

func TestNodesSplitTheFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 12)
		for _, name := range []string{"n1", "n2", "n3"} {
			r.start(name)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if c := r.owners(); c["n1"] != 4 || c["n2"] != 4 || c["n3"] != 4 {
			t.Errorf("owners %v, want 4 devices on each node", c)
		}
		// Steady state: nothing stops or starts over 30 s of renewals.
		before := r.log.spans["dev-00"]
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := len(r.log.spans["dev-00"]); got != len(before) {
			t.Errorf("dev-00 changed owner %d times in a steady cluster", got-len(before))
		}
		if o := r.log.overlaps(); len(o) > 0 {
			t.Errorf("two owners at once:\n%s", strings.Join(o, "\n"))
		}
		r.stopAll()
	})
}

// A node cut off from the key-value store stops its devices StopMargin before
// its leases can expire; the others start them only after they expired.
func TestPartitionedNodeFencesBeforeExpiry(t *testing.T) {
	for _, tm := range []Timing{
		{LeaseTTL: 3 * time.Second},
		// A renewal round still waiting for its answer when the fencing
		// deadline comes: the request's deadline must not delay the fence.
		{LeaseTTL: 3 * time.Second, RenewEvery: 900 * time.Millisecond, StopMargin: time.Second},
	} {
		tm = tm.WithDefaults()
		t.Run(fmt.Sprintf("ttl=%v,renew=%v,margin=%v", tm.LeaseTTL, tm.RenewEvery, tm.StopMargin), func(t *testing.T) {
			testPartition(t, tm)
		})
	}
}

func testPartition(t *testing.T, tm Timing) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 6)
		r.timing = tm
		a := r.start("a")
		time.Sleep(5 * time.Second) // a owns everything
		r.start("b")
		time.Sleep(20 * time.Second) // b got half by handoff
		synctest.Wait()
		mine := a.node.Owned()
		if len(mine) != 3 {
			t.Fatalf("a owns %v, want 3 devices", mine)
		}
		cutAt := time.Now()
		a.leases.Cut()
		a.nodesc.Cut()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := a.node.Owned(); len(got) != 0 {
			t.Errorf("a still owns %v while cut off", got)
		}
		for _, dev := range mine {
			stop := r.log.lastStop(dev, "a")
			owner, since := r.log.owner(dev)
			if owner != "b" {
				t.Errorf("%s: owner %q after a was cut off, want b", dev, owner)
				continue
			}
			if gap := since.Sub(stop); gap < r.timing.StopMargin {
				t.Errorf("%s: a stopped at %v, b started %v later: want at least the stop margin %v", dev, stop.Sub(cutAt), gap, r.timing.StopMargin)
			}
			if took := since.Sub(cutAt); took > r.timing.LeaseTTL+r.timing.RenewEvery {
				t.Errorf("%s: b took over %v after the cut, want within lease TTL + one round (%v)", dev, took, r.timing.LeaseTTL+r.timing.RenewEvery)
			}
		}
		if s := a.node.Stats(); s.Fenced != 3 || s.FenceOverruns != 0 || s.RenewFailures < 3 {
			t.Errorf("a's stats %+v, want 3 fenced, no overrun and its renewals of the 3 counted as failed", s)
		}
		// Healed: a comes back, registers again and gets its share by handoff.
		a.leases.Restore()
		a.nodesc.Restore()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if c := r.owners(); c["a"] != 3 || c["b"] != 3 {
			t.Errorf("after healing owners %v, want 3 and 3", c)
		}
		if o := r.log.overlaps(); len(o) > 0 {
			t.Errorf("two owners at once:\n%s", strings.Join(o, "\n"))
		}
		r.stopAll()
	})
}

// A node that shuts down hands its devices over at once, without waiting for
// the leases to expire.
func TestShutdownHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 4)
		a := r.start("a")
		r.start("b")
		time.Sleep(20 * time.Second)
		synctest.Wait()
		mine := a.node.Owned()
		if len(mine) != 2 {
			t.Fatalf("a owns %v, want 2", mine)
		}
		a.cancel()
		<-a.done
		delete(r.run, "a")
		stopped := time.Now()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		for _, dev := range mine {
			owner, since := r.log.owner(dev)
			if owner != "b" || since.Sub(stopped) > r.timing.RenewEvery {
				t.Errorf("%s: owner %q since %v after a's shutdown; want b within one round", dev, owner, since.Sub(stopped))
			}
		}
		if o := r.log.overlaps(); len(o) > 0 {
			t.Errorf("two owners at once:\n%s", strings.Join(o, "\n"))
		}
		r.stopAll()
	})
}

// Two processes configured with one node name: the second waits.
func TestDuplicateNodeNameWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 2)
		first := r.start("n")
		time.Sleep(5 * time.Second)
		lc, nc := r.leases.client(), r.nodes.client()
		twin, err := newNode(lc, nc, devices{node: "twin", log: r.log}, r.cat, NodeOptions{Name: "n", Timing: r.timing, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- twin.Serve(ctx) }()
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if got := twin.Owned(); len(got) != 0 {
			t.Errorf("a second process named like a live node owns %v", got)
		}
		if got := first.node.Owned(); len(got) != 2 {
			t.Errorf("first owns %v, want both", got)
		}
		cancel()
		<-done
		r.stopAll()
	})
}

// A dead node's registration may outlive its leases for a moment; placement
// must not wait for it: a node that missed renewals is left out of the plan,
// so its devices go to the live nodes as soon as their leases expire, not
// after ClaimGrace.
func TestDeadNodeLeftOutOfThePlan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, 6)
		r.timing.ClaimGrace = 10 * time.Second
		r.nodes = newMemBucket(30 * time.Second) // registrations outlive the leases
		a := r.start("a")
		time.Sleep(15 * time.Second)
		r.start("b")
		time.Sleep(40 * time.Second)
		synctest.Wait()
		mine := a.node.Owned()
		if len(mine) != 3 {
			t.Fatalf("a owns %v, want 3", mine)
		}
		a.leases.Cut()
		a.nodesc.Cut()
		cut := time.Now()
		time.Sleep(8 * time.Second)
		synctest.Wait()
		for _, dev := range mine {
			owner, since := r.log.owner(dev)
			if owner != "b" || since.Sub(cut) > r.timing.LeaseTTL+r.timing.RenewEvery {
				t.Errorf("%s: owner %q %v after a died, want b within lease TTL + one round", dev, owner, since.Sub(cut))
			}
		}
		r.stopAll()
	})
}
