package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard/switchyard/cluster/clustertest"
)

// natsTiming is short so the real-NATS tests take seconds; the margins keep
// their proportions (the bucket's limit markers need at least 1s).
var natsTiming = Timing{LeaseTTL: 2 * time.Second, RenewEvery: 400 * time.Millisecond, StopMargin: 800 * time.Millisecond}

type natsNode struct {
	nc     *nats.Conn
	node   *Node
	cancel context.CancelFunc
	done   chan error
}

func startNATSNode(t *testing.T, url, name string, log *connLog, cat []DeviceRef) *natsNode {
	t.Helper()
	nc, err := Connect(Config{URLs: []string{url}, Node: name}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := Open(ctx, nc, "t", natsTiming, Retention{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.NewNode(devices{node: name, log: log}, cat, NodeOptions{Name: name, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	nn := &natsNode{nc: nc, node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { nn.done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		nn.cancel()
		<-nn.done
		nn.nc.Close()
	})
	return nn
}

// eventually polls cond every 50ms until it holds or the bound passes.
func eventually(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ownedBy(log *connLog, cat []DeviceRef) map[string]int {
	c := map[string]int{}
	for _, d := range cat {
		o, _ := log.owner(d.Name)
		c[o]++
	}
	return c
}

// Real NATS: three nodes split nine devices; one is cut off by a black-hole
// proxy, another loses its connection; the survivors take every device over
// and no device ever has two owners; the cut-off node comes back and gets its
// share again by handoff.
func TestNATSLeaseFailover(t *testing.T) {
	srv := clustertest.StartServer(t)
	proxy := clustertest.StartProxy(t, srv.URL())
	log := newConnLog()
	cat := fleet(9, nil)
	a := startNATSNode(t, proxy.URL(), "a", log, cat)
	b := startNATSNode(t, srv.URL(), "b", log, cat)
	c := startNATSNode(t, srv.URL(), "c", log, cat)
	eventually(t, 20*time.Second, "three devices on each node", func() bool {
		o := ownedBy(log, cat)
		return o["a"] == 3 && o["b"] == 3 && o["c"] == 3
	})

	view, err := openTest(t, srv.URL(), "observer").View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(view.Nodes) != 3 || len(view.Leases) != 9 {
		t.Fatalf("view: %d nodes, %d leases; want 3 and 9", len(view.Nodes), len(view.Leases))
	}
	for _, nv := range view.Nodes {
		if nv.Devices != 3 || nv.Started.IsZero() {
			t.Errorf("view of node %s: %+v, want 3 devices and a start time", nv.Name, nv)
		}
	}
	for _, l := range view.Leases {
		if o, _ := log.owner(l.Device); o != l.Node || l.Acquired.After(l.Renewed) || time.Since(l.Renewed) > natsTiming.LeaseTTL {
			t.Errorf("view of lease %+v: the device runs on %q", l, o)
		}
	}
	if view.ArchiverErr == "" {
		t.Errorf("view: archiver lag %+v without an archiver", view.Archiver)
	}

	proxy.Cut()
	cutAt := time.Now()
	eventually(t, 10*time.Second, "b and c own a's devices", func() bool {
		o := ownedBy(log, cat)
		return o["b"]+o["c"] == 9
	})
	t.Logf("takeover after a black-holed: %v", time.Since(cutAt).Round(10*time.Millisecond))
	if s := a.node.Stats(); s.Fenced != 3 || s.FenceOverruns != 0 {
		t.Errorf("a's stats %+v: want its 3 devices fenced, no overrun", s)
	}

	c.nc.Close()
	eventually(t, 10*time.Second, "b owns every device", func() bool { return ownedBy(log, cat)["b"] == 9 })
	// A closed connection ends the node's Serve (its watches end) after it
	// stopped its devices; its supervisor restarts it with a new connection.
	select {
	case err := <-c.done:
		if err == nil {
			t.Error("c's Serve returned nil after its NATS connection closed")
		}
		c.done <- err
	case <-time.After(5 * time.Second):
		t.Error("c's Serve still running 5s after its NATS connection closed")
	}
	if got := c.node.Owned(); len(got) != 0 {
		t.Errorf("c owns %v after its connection closed", got)
	}

	proxy.Restore()
	eventually(t, 20*time.Second, "a gets a share back", func() bool {
		o := ownedBy(log, cat)
		return o["a"] >= 4 && o["b"] >= 4
	})
	if o := log.overlaps(); len(o) > 0 {
		t.Errorf("two owners at once:\n%s", strings.Join(o, "\n"))
	}
	_ = b
}

func TestOpenRefusesAnotherLeaseTTL(t *testing.T) {
	srv := clustertest.StartServer(t)
	nc, err := Connect(Config{URLs: []string{srv.URL()}, Node: "x"}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	if _, err := Open(ctx, nc, "t", natsTiming, Retention{}); err != nil {
		t.Fatal(err)
	}
	other := natsTiming
	other.LeaseTTL = 4 * time.Second
	_, err = Open(ctx, nc, "t", other, Retention{})
	if err == nil || !strings.Contains(err.Error(), "cluster.timing.lease_ttl") {
		t.Errorf("Open with another lease TTL: %v, want a cluster.timing.lease_ttl error", err)
	}
}
