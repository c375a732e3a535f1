package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Devices is what a node does when it wins or loses a device (Owner is the
// implementation that wires a whole node; tests use fakes).
type Devices interface {
	// StartDevice starts polling a device this node now owns; epoch is the
	// lease revision, unique to this ownership in the cluster. It returns once
	// the device's process is started; it need not wait for the instrument.
	// ctx ends at the ownership's first fencing deadline: past it the device
	// must not connect. After an error nothing of the device runs.
	StartDevice(ctx context.Context, name string, epoch uint64) error
	// StopDevice stops polling a device and returns only once its connection
	// to the instrument is closed. It must finish within Timing.StopMargin.
	StopDevice(ctx context.Context, name string) error
}

// NodeOptions configures a Node. The zero value of every field but Name works.
type NodeOptions struct {
	// Name is the node's name, unique in the cluster. Required.
	Name string
	// Selectors say which devices this node may own; none: every device.
	Selectors []Selector
	// Address is what other nodes and clients are told to reach this node's API at. Default "".
	Address string
	// Timing of the lease protocol. Zero fields take their defaults.
	Timing Timing
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// OnOwnership hears of every device this node starts (owned true, with the
	// lease revision as the ownership's epoch) or stops owning, after the
	// device was started or stopped. Default none. It must not block.
	OnOwnership func(device string, owned bool, epoch uint64)
	// OnFenceOverrun is called when a device stopped after its lease could
	// already have expired elsewhere (StopDevice took longer than the margin
	// allowed). Default: an error in the log. Wiring may end the process here,
	// the last fence there is.
	OnFenceOverrun func(device string, late time.Duration)
}

// leaseRecord is the value of a device lease key.
type leaseRecord struct {
	Node        string `json:"node"`
	Incarnation string `json:"incarnation"`
	AcquiredNs  int64  `json:"acquired_ns"`
}

// nodeRecord is the value of a node registration key.
type nodeRecord struct {
	Node        string     `json:"node"`
	Incarnation string     `json:"incarnation"`
	Selectors   []Selector `json:"selectors,omitempty"`
	Address     string     `json:"address,omitempty"`
	StartedNs   int64      `json:"started_ns"`
}

// held is a lease this node holds.
type held struct {
	id   uint64 // which holding: a device can be lost and won again
	rev  uint64
	sent time.Time // when the last write the server confirmed was sent
	// tried is when the first renewal not confirmed since was sent (zero:
	// none). Its answer may have been lost while the server stored it; if
	// the watch then shows a write of ours, that write was sent no earlier.
	tried    time.Time
	acquired time.Time
	// started is closed once StartDevice returned (and OnOwnership heard
	// of it), or once the start was given up: a stop waits for it, so that
	// a device never stops before it started.
	started chan struct{}
	// skipped (written before started is closed) says nothing of the device
	// runs: StartDevice failed, or was never called because the holding's
	// first fencing deadline came before its turn.
	skipped bool
}

// Node keeps this node's registration and device leases, places devices,
// starts the ones it wins and stops the ones it loses or cannot renew in time.
// Serve runs it; everything else is safe for concurrent use.
type Node struct {
	opts   NodeOptions
	t      Timing
	log    *slog.Logger
	leases kvStore
	nodes  kvStore
	dev    Devices
	inc    string

	mu      sync.Mutex
	catalog []DeviceRef
	held    map[string]*held // by device name
	// Mirrors of the two buckets, kept by their watches: the owner of each
	// leased device ("?" for a value not made by Switchyard), and each
	// node's last registration.
	leaseView map[string]string  // by device name
	nodeView  map[string]kvEntry // by node name
	freeSince map[string]time.Time
	reg       *held // this node's registration, nil while unregistered
	regSince  time.Time
	stats     NodeStats
	holdings  uint64
	plans     uint64 // placements computed, for the tests

	// wake asks the placement loop to place again: an owner, a node or the
	// catalog changed, or a renewal round ended.
	wake chan struct{}
	// starts are the StartDevice calls in flight, at most cap(startSem).
	starts   sync.WaitGroup
	startSem chan struct{}
}

// NodeStats counts what the lease protocol did.
type NodeStats struct {
	Acquired, Released, Fenced, Lost, FenceOverruns uint64
	// RenewFailures counts lease renewals the server did not confirm.
	RenewFailures uint64
}

// newNode builds a node on two stores (tests use in-memory ones).
func newNode(leases, nodes kvStore, dev Devices, catalog []DeviceRef, opts NodeOptions) (*Node, error) {
	if opts.Name == "" {
		return nil, errors.New("cluster: node name: must not be empty")
	}
	t := opts.Timing.WithDefaults()
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("cluster timing: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Node{
		opts: opts, t: t, log: opts.Logger.With("node", opts.Name),
		leases: leases, nodes: nodes, dev: dev, inc: hex.EncodeToString(b[:]),
		catalog: append([]DeviceRef(nil), catalog...), held: map[string]*held{},
		leaseView: map[string]string{}, nodeView: map[string]kvEntry{}, freeSince: map[string]time.Time{},
		wake: make(chan struct{}, 1), startSem: make(chan struct{}, 16),
	}, nil
}

// Name is the node's name.
func (n *Node) Name() string { return n.opts.Name }

// Owned returns the devices this node owns now, sorted.
func (n *Node) Owned() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.held))
	for d := range n.held {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Stats returns the node's counters.
func (n *Node) Stats() NodeStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

func (n *Node) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Serve registers the node, then renews, places, acquires, releases and
// fences until ctx ends; then it stops its devices and releases their leases
// so that other nodes take them over at once.
//
// The lease keeper (registration, renewal rounds, fencing) runs on a
// goroutine of its own, apart from the placement loop (the watches, placing,
// acquiring, releasing) and from the devices' starts: nothing placement does,
// however slow on a busy machine, can delay a renewal or a fence.
func (n *Node) Serve(ctx context.Context) error {
	wctx, stopWatch := context.WithCancel(context.Background())
	lw, err := n.leases.Watch(wctx)
	if err != nil {
		stopWatch()
		return fmt.Errorf("cluster: watch leases: %w", err)
	}
	nw, err := n.nodes.Watch(wctx)
	if err != nil {
		stopWatch()
		drain(lw)
		return fmt.Errorf("cluster: watch nodes: %w", err)
	}
	defer func() {
		stopWatch()
		drain(lw)
		drain(nw)
	}()
	defer n.shutdown()

	start := time.Now()
	n.mu.Lock()
	for _, d := range n.catalog {
		n.freeSince[d.Name] = start
	}
	n.mu.Unlock()

	kctx, stopKeeper := context.WithCancel(ctx)
	kept := make(chan struct{})
	go func() {
		defer close(kept)
		n.keepLeases(kctx)
	}()
	// Before shutdown: no more rounds or fences, and every start returned.
	defer func() {
		stopKeeper()
		<-kept
		n.starts.Wait()
	}()

	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-lw:
			if !ok {
				return errors.New("cluster: lease watch ended")
			}
			n.onLease(ctx, e)
		case e, ok := <-nw:
			if !ok {
				return errors.New("cluster: node watch ended")
			}
			n.onNode(e)
		case <-n.wake:
			if n.registered() {
				n.place(ctx, time.Now())
			}
		}
	}
}

// keepLeases registers the node and renews its registration and leases
// every RenewEvery, and fences each lease at its deadline, until ctx ends.
// After each round it asks the placement loop to place.
func (n *Node) keepLeases(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if now := time.Now(); !now.Before(next) {
			next = now.Add(n.t.RenewEvery)
			n.round(ctx)
			n.poke()
		}
		n.fence(time.Now())
		wait := time.Until(next)
		if f, ok := n.nextFence(); ok && time.Until(f) < wait {
			wait = time.Until(f)
		}
		timer.Reset(max(wait, 0))
	}
}

func drain(ch <-chan kvEntry) {
	for range ch {
	}
}

func (n *Node) registered() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.reg != nil
}

// round registers or renews the node, then renews every lease.
func (n *Node) round(ctx context.Context) {
	now := time.Now()
	if !n.registered() {
		n.register(ctx, now)
	} else {
		n.renewRegistration(ctx, now)
	}
	// The leases are renewed whether or not the registration is: they are
	// this process's (its incarnation's), and a registration lost for a
	// round must not cost every device.
	n.renew(ctx, now)
}

// budget is the deadline for a request sent at now: the request timeout, but
// never past the earliest fencing deadline, so a hanging request cannot make
// the node fence late.
func (n *Node) budget(ctx context.Context, now time.Time) (context.Context, context.CancelFunc) {
	return n.budgetFor(ctx, now, n.t.RequestTimeout)
}

// budgetFor is budget with another timeout than the request timeout.
func (n *Node) budgetFor(ctx context.Context, now time.Time, timeout time.Duration) (context.Context, context.CancelFunc) {
	d := now.Add(timeout)
	if f, ok := n.nextFence(); ok && f.Before(d) {
		d = f
	}
	return context.WithDeadline(ctx, d)
}

func (n *Node) register(ctx context.Context, now time.Time) {
	rec, _ := json.Marshal(nodeRecord{Node: n.opts.Name, Incarnation: n.inc, Selectors: n.opts.Selectors,
		Address: n.opts.Address, StartedNs: now.UnixNano()})
	rctx, cancel := n.budget(ctx, now)
	defer cancel()
	key := Token(n.opts.Name)
	rev, err := n.nodes.Create(rctx, key, rec)
	if errors.Is(err, errExists) {
		e, gerr := n.nodes.Get(rctx, key)
		var other nodeRecord
		if gerr == nil && json.Unmarshal(e.Value, &other) == nil && other.Incarnation == n.inc {
			rev, err = e.Rev, nil // our own earlier create whose answer was lost
		} else {
			n.log.Warn("cluster: another process is registered under this node name; waiting for its registration to expire",
				"other_incarnation", other.Incarnation)
			return
		}
	}
	if err != nil {
		n.log.Warn("cluster: register node", "err", err)
		return
	}
	n.mu.Lock()
	n.reg = &held{rev: rev, sent: now, acquired: now}
	n.regSince = now
	n.mu.Unlock()
	n.log.Info("cluster: node registered", "incarnation", n.inc)
}

func (n *Node) renewRegistration(ctx context.Context, now time.Time) {
	n.mu.Lock()
	if n.reg.tried.IsZero() {
		n.reg.tried = now
	}
	reg := *n.reg
	n.mu.Unlock()
	rec, _ := json.Marshal(nodeRecord{Node: n.opts.Name, Incarnation: n.inc, Selectors: n.opts.Selectors,
		Address: n.opts.Address, StartedNs: reg.acquired.UnixNano()})
	rctx, cancel := n.budget(ctx, now)
	defer cancel()
	key := Token(n.opts.Name)
	rev, err := n.nodes.Update(rctx, key, rec, reg.rev)
	if errors.Is(err, errRevision) {
		// Our own earlier renewal, whose answer timed out, may have been
		// stored: then the registration is still ours, at a later revision,
		// written by a renewal sent no earlier than the first unconfirmed one.
		if e, gerr := n.nodes.Get(rctx, key); gerr == nil && n.adoptRegistration(e) {
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.reg == nil {
		return
	}
	switch {
	case err == nil:
		n.reg.rev, n.reg.sent, n.reg.tried = rev, now, time.Time{}
	case errors.Is(err, errRevision):
		// Our registration expired and someone registered since: start again.
		n.log.Warn("cluster: node registration lost; registering again")
		n.reg = nil
	default:
		n.log.Warn("cluster: renew node registration", "err", err)
		if !now.Before(reg.sent.Add(n.t.LeaseTTL)) {
			n.reg = nil
		}
	}
}

// renew renews every held lease, concurrently; each confirmed renewal moves
// that lease's fencing deadline.
func (n *Node) renew(ctx context.Context, now time.Time) {
	n.mu.Lock()
	type job struct {
		dev string
		h   held
	}
	jobs := make([]job, 0, len(n.held))
	for d, h := range n.held {
		if h.tried.IsZero() {
			h.tried = now
		}
		jobs = append(jobs, job{d, *h})
	}
	n.mu.Unlock()
	if len(jobs) == 0 {
		return
	}
	// A round's renewals may take until the next round (not just the request
	// timeout): on a busy machine an answer that takes longer than usual
	// still confirms a lease in time.
	rctx, cancel := n.budgetFor(ctx, now, n.t.RenewEvery)
	defer cancel()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	var failed int
	var firstErr error
	var slowest time.Duration
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rec, _ := json.Marshal(leaseRecord{Node: n.opts.Name, Incarnation: n.inc, AcquiredNs: j.h.acquired.UnixNano()})
			rev, err := n.leases.Update(rctx, Token(j.dev), rec, j.h.rev)
			took := time.Since(now)
			n.mu.Lock()
			defer n.mu.Unlock()
			// The same holding (not a later one of the same device, nor one
			// released meanwhile): the watch may have shown our write before
			// this answer came.
			h, ok := n.held[j.dev]
			if !ok || h.id != j.h.id {
				return
			}
			if err != nil {
				n.stats.RenewFailures++
				failed++
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", j.dev, err)
				}
				if errors.Is(err, errRevision) && h.rev == j.h.rev {
					n.log.Warn("cluster: lease renewal refused: the lease changed", "device", j.dev)
				}
				return
			}
			slowest = max(slowest, took)
			h.rev = max(h.rev, rev)
			if now.After(h.sent) {
				h.sent = now
			}
			h.tried = time.Time{}
		}()
	}
	wg.Wait()
	if failed > 0 {
		n.log.Warn("cluster: lease renewals failed", "failed", failed, "of", len(jobs), "first_err", firstErr,
			"slowest_confirmed", slowest, "round", time.Since(now))
	}
}

// fenceAt is when a held device must be stopped unless its lease was renewed:
// the lease can expire on the server LeaseTTL after the last renewal it stored,
// which was sent no earlier than h.sent, so stopping by h.sent + LeaseTTL -
// StopMargin leaves StopMargin for the stop to finish.
func (n *Node) fenceAt(h *held) time.Time { return h.sent.Add(n.t.LeaseTTL - n.t.StopMargin) }

// nextFence is the earliest fencing deadline of a held lease or of the
// registration.
func (n *Node) nextFence() (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var first time.Time
	for _, h := range n.held {
		if f := n.fenceAt(h); first.IsZero() || f.Before(first) {
			first = f
		}
	}
	return first, !first.IsZero()
}

// fence stops every device whose lease this node has not renewed in time: it
// must be stopped before the lease can expire on the server.
func (n *Node) fence(now time.Time) {
	n.mu.Lock()
	var due []string
	for d, h := range n.held {
		if !now.Before(n.fenceAt(h)) {
			due = append(due, d)
		}
	}
	n.mu.Unlock()
	sort.Strings(due)
	// Concurrently: every stop must finish within the margin, however many.
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, d := range due {
		n.log.Warn("cluster: lease not renewed in time; stopping the device before the lease can expire", "device", d)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n.stop(d, "fenced")
		}()
	}
	wg.Wait()
}

// stop stops a held device and forgets its lease (without releasing it).
func (n *Node) stop(device, why string) {
	n.mu.Lock()
	h, ok := n.held[device]
	if !ok {
		n.mu.Unlock()
		return
	}
	expires := h.sent.Add(n.t.LeaseTTL)
	delete(n.held, device)
	switch why {
	case "fenced":
		n.stats.Fenced++
	case "lost":
		n.stats.Lost++
	}
	n.mu.Unlock()
	// A start still in progress ends by the holding's first fencing
	// deadline at the latest (its context's).
	<-h.started
	if h.skipped {
		n.poke()
		return // nothing runs
	}
	ctx, cancel := context.WithDeadline(context.Background(), expires)
	err := n.dev.StopDevice(ctx, device)
	cancel()
	if err != nil {
		n.log.Error("cluster: stop device", "device", device, "err", err)
	}
	if late := time.Since(expires); late > 0 || err != nil {
		n.mu.Lock()
		n.stats.FenceOverruns++
		n.mu.Unlock()
		if n.opts.OnFenceOverrun != nil {
			n.opts.OnFenceOverrun(device, late)
		} else {
			n.log.Error("cluster: device stopped after its lease could have expired: another node may have polled it", "device", device, "late", late)
		}
	}
	if n.opts.OnOwnership != nil {
		n.opts.OnOwnership(device, false, h.rev)
	}
	n.poke()
}

func (n *Node) onLease(ctx context.Context, e kvEntry) {
	if e.Key == "" {
		return
	}
	dev, err := ParseToken(e.Key)
	if err != nil {
		n.log.Warn("cluster: lease key not made by Switchyard", "key", e.Key)
		return
	}
	now := time.Now()
	var rec leaseRecord
	owner := ""
	if !e.Deleted {
		owner = "?"
		if json.Unmarshal(e.Value, &rec) == nil && rec.Node != "" {
			owner = rec.Node
		}
	}
	n.mu.Lock()
	h, mine := n.held[dev]
	before, had := n.leaseView[dev]
	if e.Deleted {
		delete(n.leaseView, dev)
		if _, ok := n.freeSince[dev]; !ok {
			n.freeSince[dev] = now
		}
	} else {
		n.leaseView[dev] = owner
		delete(n.freeSince, dev)
	}
	lost := false
	if mine && e.Rev > h.rev {
		if !e.Deleted && rec.Incarnation == n.inc {
			// A write of ours whose answer we did not get (yet): one of the
			// renewals sent since h.tried, the only writes of ours that the
			// server could store after h.rev.
			h.rev = e.Rev
			if h.tried.After(h.sent) {
				h.sent = h.tried
			}
			h.tried = time.Time{}
		} else {
			lost = true
		}
	}
	n.mu.Unlock()
	if lost {
		n.log.Error("cluster: lease taken or removed while held; stopping the device", "device", dev, "deleted", e.Deleted)
		n.stop(dev, "lost")
	}
	// A renewal (the same owner writing again) changes nothing placement
	// reads: every node renews every lease every round, and placing on
	// each of those writes would cost a plan per write.
	if had != !e.Deleted || before != owner {
		n.poke()
	}
}

// adoptRegistration takes e, this node's registration key as read or
// watched, for a renewal of ours whose answer was lost (or is still on its
// way) if this process wrote it: such a write was sent no earlier than the
// first renewal not confirmed since. It reports whether e is this
// process's registration.
func (n *Node) adoptRegistration(e kvEntry) bool {
	var rec nodeRecord
	if e.Deleted || json.Unmarshal(e.Value, &rec) != nil || rec.Incarnation != n.inc {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.reg != nil && e.Rev > n.reg.rev {
		n.reg.rev = e.Rev
		if n.reg.tried.After(n.reg.sent) {
			n.reg.sent = n.reg.tried
		}
		n.reg.tried = time.Time{}
	}
	return true
}

func (n *Node) onNode(e kvEntry) {
	if e.Key == "" {
		return
	}
	name, err := ParseToken(e.Key)
	if err != nil {
		return
	}
	if name == n.opts.Name {
		n.adoptRegistration(e)
	}
	n.mu.Lock()
	_, had := n.nodeView[name]
	if e.Deleted {
		delete(n.nodeView, name)
	} else {
		n.nodeView[name] = e
	}
	n.mu.Unlock()
	// A renewed registration changes placement only through its age, which
	// the placement after each round looks at.
	if had == e.Deleted {
		n.poke()
	}
}

// place computes the plan and acts on it: acquire free devices meant for this
// node (or free for longer than ClaimGrace and ownable here), release some
// held devices meant for another live node.
func (n *Node) place(ctx context.Context, now time.Time) {
	n.mu.Lock()
	if n.reg == nil {
		n.mu.Unlock()
		return
	}
	n.plans++
	settling := now.Sub(n.regSince) < n.t.ClaimGrace
	nodes := []NodeRef{{Name: n.opts.Name, Selectors: n.opts.Selectors}}
	// A node whose registration the server last stored well before ours
	// missed renewals: it is dead or cut off, though its key has not expired
	// yet. Plan without it, so that its devices go to live nodes at once when
	// their leases expire (both times are the server's: no clock skew).
	own, haveOwn := n.nodeView[n.opts.Name]
	for name, e := range n.nodeView {
		if name == n.opts.Name {
			continue
		}
		if haveOwn && own.Created.Sub(e.Created) > 2*n.t.RenewEvery {
			continue
		}
		var rec nodeRecord
		if json.Unmarshal(e.Value, &rec) != nil {
			continue
		}
		nodes = append(nodes, NodeRef{Name: name, Selectors: rec.Selectors})
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	owners := make(map[string]string, len(n.leaseView)+len(n.held))
	for dev, o := range n.leaseView {
		owners[dev] = o
	}
	for dev := range n.held {
		owners[dev] = n.opts.Name
	}
	catalog := n.catalog
	inCatalog := make(map[string]bool, len(catalog))
	for _, d := range catalog {
		inCatalog[d.Name] = true
	}
	plan := Plan(catalog, nodes, owners)
	var acquire, release []string
	for _, d := range catalog {
		if _, taken := owners[d.Name]; taken || settling || !MayOwn(n.opts.Selectors, d.Tags) {
			continue
		}
		since, ok := n.freeSince[d.Name]
		if !ok {
			n.freeSince[d.Name] = now
			since = now
		}
		// The planned node claims at once; any other node that may own the
		// device claims it once it has been free for ClaimGrace (the planned
		// node may be dead but not yet expired).
		if plan[d.Name] == n.opts.Name || now.Sub(since) >= n.t.ClaimGrace {
			acquire = append(acquire, d.Name)
		}
	}
	for dev := range n.held {
		if !inCatalog[dev] || plan[dev] != "" && plan[dev] != n.opts.Name {
			release = append(release, dev)
		}
	}
	n.mu.Unlock()
	sort.Strings(release)
	if limit := max(1, len(n.Owned())/8); len(release) > limit {
		release = release[:limit]
	}
	for _, d := range release {
		n.release(ctx, d)
	}
	n.acquire(ctx, now, acquire)
}

func (n *Node) acquire(ctx context.Context, now time.Time, devices []string) {
	if len(devices) == 0 {
		return
	}
	rctx, cancel := n.budget(ctx, now)
	defer cancel()
	type won struct {
		dev string
		rev uint64
	}
	var mu sync.Mutex
	var wins []won
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	rec, _ := json.Marshal(leaseRecord{Node: n.opts.Name, Incarnation: n.inc, AcquiredNs: now.UnixNano()})
	for _, d := range devices {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rev, err := n.leases.Create(rctx, Token(d), rec)
			if err != nil {
				return
			}
			mu.Lock()
			wins = append(wins, won{d, rev})
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(wins, func(i, j int) bool { return wins[i].dev < wins[j].dev })
	// The devices start in the background, a few at a time: a start talks
	// to the cluster (announcement, alarm state, command subscription) and
	// on a busy machine a hundred of them one after the other took seconds,
	// in which this loop claimed nothing and other nodes claimed the devices
	// placement meant for this one (then handed them over again).
	for _, w := range wins {
		h := &held{rev: w.rev, sent: now, acquired: now, started: make(chan struct{})}
		n.mu.Lock()
		n.holdings++
		h.id = n.holdings
		n.held[w.dev] = h
		n.stats.Acquired++
		delete(n.freeSince, w.dev)
		n.mu.Unlock()
		n.starts.Add(1)
		go func() {
			defer n.starts.Done()
			n.startSem <- struct{}{}
			defer func() { <-n.startSem }()
			n.start(ctx, w.dev, h, w.rev, now.Add(n.t.LeaseTTL-n.t.StopMargin))
		}()
	}
}

// start starts a won device (holding h, lease revision epoch) by its first
// fencing deadline, then closes h.started. A device whose turn comes after
// that deadline is not started at all: its lease may be expiring, and it
// will be fenced.
func (n *Node) start(ctx context.Context, device string, h *held, epoch uint64, deadline time.Time) {
	sctx, cancel := context.WithDeadline(ctx, deadline)
	err := sctx.Err()
	if err == nil {
		err = n.dev.StartDevice(sctx, device, epoch)
	}
	cancel()
	n.mu.Lock()
	h.skipped = err != nil
	n.mu.Unlock()
	if err == nil {
		n.log.Info("cluster: device acquired", "device", device)
		if n.opts.OnOwnership != nil {
			n.opts.OnOwnership(device, true, epoch)
		}
	}
	close(h.started)
	if err != nil {
		n.log.Error("cluster: start device", "device", device, "err", err)
		n.release(ctx, device)
	}
}

// release hands a device over: stop it, then delete its lease so that the
// next owner need not wait for it to expire.
func (n *Node) release(ctx context.Context, device string) {
	n.mu.Lock()
	h, ok := n.held[device]
	if !ok {
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	n.stop(device, "released")
	n.mu.Lock()
	n.stats.Released++
	rev := h.rev // the last one confirmed while it was held
	n.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, n.t.RequestTimeout)
	defer cancel()
	key := Token(device)
	err := n.leases.Delete(rctx, key, rev)
	// A renewal sent before the stop may have been stored since: the lease
	// is still this process's, at a later revision. Delete that one, or the
	// next owner waits for the lease to expire.
	for try := 0; try < 3 && errors.Is(err, errRevision); try++ {
		e, gerr := n.leases.Get(rctx, key)
		var rec leaseRecord
		if gerr != nil || json.Unmarshal(e.Value, &rec) != nil || rec.Incarnation != n.inc {
			err = nil // someone else's now, or gone
			break
		}
		err = n.leases.Delete(rctx, key, e.Rev)
	}
	if err != nil {
		n.log.Info("cluster: release lease (it will expire instead)", "device", device, "err", err)
	}
	n.log.Info("cluster: device released", "device", device)
}

// shutdown stops every device and releases its lease, then deregisters.
func (n *Node) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), n.t.StopMargin+n.t.RequestTimeout)
	defer cancel()
	for _, d := range n.Owned() {
		n.release(ctx, d)
	}
	n.mu.Lock()
	reg := n.reg
	n.reg = nil
	n.mu.Unlock()
	if reg != nil {
		_ = n.nodes.Delete(ctx, Token(n.opts.Name), reg.rev)
	}
}
