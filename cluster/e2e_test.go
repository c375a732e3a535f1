package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

// simDevices is a node's device supervisor in the in-process cluster test:
// a running device "polls" every 20ms (one sample of channel v) into the
// node's publisher, and its connection is recorded in the shared log.
type simDevices struct {
	node string
	log  *connLog
	pub  *Publisher

	mu   sync.Mutex
	runs map[string]*poller
}

type poller struct{ stop, done chan struct{} }

func (s *simDevices) StartDevice(_ context.Context, name string) error {
	if err := (devices{node: s.node, log: s.log}).StartDevice(context.Background(), name, 0); err != nil {
		return err
	}
	p := &poller{stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.runs[name] = p
	s.mu.Unlock()
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				s.pub.Publish(telemetry.Sample{Device: name, Channel: "v", TimeNs: time.Now().UnixNano(), Value: telemetry.String(s.node)})
			}
		}
	}()
	return nil
}

func (s *simDevices) StopDevice(_ context.Context, name string) error {
	s.mu.Lock()
	p := s.runs[name]
	delete(s.runs, name)
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("%s not running on %s", name, s.node)
	}
	close(p.stop)
	<-p.done
	return (devices{node: s.node, log: s.log}).StopDevice(context.Background(), name)
}

// Send answers with the node's name when the device runs here.
func (s *simDevices) Send(_ context.Context, device string, _ Command, _ Caller) (Reply, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runs[device] == nil {
		return Reply{}, errors.New("device not running here")
	}
	return Reply{Text: s.node}, nil
}

func (s *simDevices) Abort(context.Context, string, string, Caller) (string, error) { return "", nil }

func (s *simDevices) Alarm(context.Context, string, AlarmAction, Caller) ([]byte, error) {
	return nil, errors.New("no alarms here")
}

type member struct {
	c      *Cluster
	node   *Node
	pub    *Publisher
	owner  *Owner
	sim    *simDevices
	stop   context.CancelFunc
	done   sync.WaitGroup
	proxy  *clustertest.Proxy
	router *Router
}

func startMember(t *testing.T, srv *clustertest.Server, name string, log *connLog, cat []DeviceRef, archive Appender) *member {
	t.Helper()
	proxy := clustertest.StartProxy(t, srv.URL())
	c := openTest(t, proxy.URL(), name)
	pub := NewPublisher(c, name, PublisherOptions{Logger: quiet()})
	sim := &simDevices{node: name, log: log, pub: pub, runs: map[string]*poller{}}
	owner := NewOwner(sim, pub, NewResponder(c, name, sim, nil, quiet()), quiet())
	node, err := c.NewNode(owner, cat, NodeOptions{Name: name, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{c: c, node: node, pub: pub, owner: owner, sim: sim, stop: cancel, proxy: proxy, router: NewRouter(c, name)}
	arch := NewArchiver(c, archive, ArchiverOptions{AckWait: 2 * time.Second, Logger: quiet()})
	pctx, pcancel := context.WithCancel(context.Background())
	m.done.Add(3)
	go func() { defer m.done.Done(); _ = pub.Serve(pctx) }()
	go func() { defer m.done.Done(); _ = arch.Serve(pctx) }()
	go func() {
		defer m.done.Done()
		_ = node.Serve(ctx)
		owner.Wait()
		pcancel() // the publisher outlives the node: it flushes what the devices left
	}()
	t.Cleanup(m.shutdown)
	return m
}

func (m *member) shutdown() {
	m.proxy.Restore()
	m.stop()
	m.done.Wait()
}

// Three nodes, nine polling devices; one node is cut off from NATS under load.
// Its devices move to the others within the takeover bound; a subscriber on a
// surviving node sees each channel's seqs once, in order, without holes, and
// the owner change as events; a command through any node reaches the owner;
// the archive holds every published sample exactly once; and no device ever
// had two owners.
func TestClusterFailoverEndToEnd(t *testing.T) {
	srv := clustertest.StartServer(t)
	log := newConnLog()
	cat := fleet(9, nil)
	archive := newArchiveFake()
	ms := map[string]*member{}
	for _, n := range []string{"a", "b", "c"} {
		ms[n] = startMember(t, srv, n, log, cat, archive)
	}
	eventually(t, 20*time.Second, "three devices on each node", func() bool {
		o := ownedBy(log, cat)
		return o["a"] == 3 && o["b"] == 3 && o["c"] == 3
	})
	col := subscribe(t, NewReader(ms["c"].c, nil), nil, time.Now().Add(-time.Minute).UnixNano())
	time.Sleep(time.Second) // load: samples flow before the failure
	moved := ms["a"].node.Owned()

	ms["a"].proxy.Cut()
	cut := time.Now()
	eventually(t, 10*time.Second, "b and c poll a's devices", func() bool {
		o := ownedBy(log, cat)
		return o["b"]+o["c"] == 9
	})
	takeover := time.Since(cut)
	t.Logf("a cut off; its devices polled elsewhere after %v", takeover.Round(10*time.Millisecond))

	// A command through b reaches the device's new owner, whichever it is.
	for _, dev := range moved {
		owner, _ := log.owner(dev)
		var rep Reply
		var err error
		for try := 0; try < 50; try++ { // the new owner may not answer yet: DEVICE_IN_FAILOVER
			rep, err = ms["b"].router.Send(context.Background(), dev, Command{Name: "who"}, Caller{Name: "test"})
			var fe *FailoverError
			if !errors.As(err, &fe) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil || rep.Text != owner {
			t.Errorf("command to %s through b: %q, %v; want an answer from its owner %s", dev, rep.Text, err, owner)
		}
	}
	time.Sleep(time.Second)
	for _, n := range []string{"b", "c"} {
		ms[n].shutdown()
	}
	ms["a"].shutdown()

	if o := log.overlaps(); len(o) > 0 {
		t.Errorf("two owners at once:\n%s", strings.Join(o, "\n"))
	}
	// Every published sample reached the subscriber once, in order, and the archive.
	total := 0
	for _, n := range []string{"a", "b", "c"} {
		total += int(ms[n].pub.Stats().Samples)
	}
	eventually(t, 10*time.Second, "the subscriber and the archive have every published sample", func() bool {
		col.mu.Lock()
		n := len(col.samples)
		col.mu.Unlock()
		return n == total && archive.distinct() == total
	})
	// The cut-off node's archiver may have stored batches whose
	// acknowledgement it could not send: they were archived again elsewhere
	// (harmless under DEDUP, which the fake applies like QuestDB).
	t.Logf("archive: %d samples, %d writes", total, archive.total())
	bound := natsTiming.LeaseTTL + natsTiming.RenewEvery + time.Second
	for _, d := range cat {
		key := d.Name + "/v"
		seqs := col.seqs(key)
		for i, s := range seqs {
			if s != uint64(i+1) {
				t.Errorf("%s: seq %d at position %d (seqs %v...): want 1, 2, 3, ... once each", key, s, i, seqs[:min(len(seqs), i+3)])
				break
			}
		}
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, dev := range moved {
		var last, first time.Time
		for _, s := range col.samples {
			if s.Device != dev {
				continue
			}
			ts := time.Unix(0, s.TimeNs)
			if s.Value.S == "a" {
				last = ts
			} else if first.IsZero() && ts.After(cut) {
				first = ts
			}
		}
		if gap := first.Sub(last); first.IsZero() || gap > bound {
			t.Errorf("%s: gap of %v between a's last sample and the new owner's first, want at most %v", dev, gap, bound)
		}
		var owners []string
		for _, e := range col.events {
			if e.Device == dev && e.State == StateOwned {
				owners = append(owners, e.Node)
			}
		}
		sort.Strings(owners)
		if len(owners) < 2 || owners[0] != "a" {
			t.Errorf("%s: OWNED events by %v, want a's and then its new owner's", dev, owners)
		}
	}
}
