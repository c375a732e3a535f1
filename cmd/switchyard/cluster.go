package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// clusterSide is a node's part of a cluster (with a cluster: section):
//
//	device processes ─► hub (local: only the devices this node owns)
//	                     ├─► cluster-publish: Publisher ─► the stream
//	                     └─► alarms (the owner evaluates)
//	the stream ─► cluster-mirror ─► view hub ─► API: Subscribe, GetLatest of any device
//	           ─► cluster-archive: Archiver ─► archive hub ─► archive (ingest Writer) ─► QuestDB
//	cluster-node: leases; starts and stops devices under the devices supervisor
//
// The API's devices are clusterDevices: every configured device with its
// state as its owner reports it, commands routed to the owner.
type clusterSide struct {
	cfg    cluster.Config
	log    *slog.Logger
	nc     *nats.Conn
	c      *cluster.Cluster
	node   *cluster.Node
	pub    *cluster.Publisher
	owner  *cluster.Owner
	router *cluster.Router
	reader *cluster.Reader
	mgr    *devicemgr.Manager

	// viewHub is what the API serves: every device's samples, from the stream.
	viewHub *telemetry.Hub
	devices *clusterDevices
	alarms  *clusterAlarms // the API's alarms: every device's
	// For the metrics: this node's archiver (nil without QuestDB) and alarm
	// saver.
	archiver *cluster.Archiver
	saver    *alarmSaver

	mu    sync.Mutex
	owned map[string]bool
}

// newClusterSide connects to NATS and opens the cluster; node names this
// process (the --node flag; empty: the section's node).
func newClusterSide(ctx context.Context, cfg *config.Config, node string, mgr *devicemgr.Manager, log *slog.Logger) (*clusterSide, error) {
	cc := cfg.ClusterConfig(node)
	if cc.Node == "" {
		return nil, errors.New("cluster.node: a node name is required (in the file, --node or SWITCHYARD_NODE)")
	}
	log = log.With("node", cc.Node)
	nc, err := cluster.Connect(cc, log)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := cluster.Open(octx, nc, cc.Prefix, cc.Timing, cc.Retention)
	if err != nil {
		nc.Close()
		return nil, err
	}
	cs := &clusterSide{cfg: cc, log: log, nc: nc, c: c, mgr: mgr, owned: map[string]bool{},
		viewHub: telemetry.NewHub(nil), router: cluster.NewRouter(c, cc.Node)}
	cs.pub = cluster.NewPublisher(c, cc.Node, cluster.PublisherOptions{Logger: log})
	cs.devices = newClusterDevices(mgr, cs)
	return cs, nil
}

// makeNode makes the lease keeper once the devices supervisor exists and the
// API's address is known; eng evaluates the alarms of the devices it wins.
func (cs *clusterSide) makeNode(devSup *supervisor.Supervisor, catalog []cluster.DeviceRef, address string, eng *alarm.Engine) error {
	local := &supervisedDevices{sup: devSup, mgr: cs.mgr}
	exec := executor{mgr: cs.mgr, log: cs.log, alarmExecutor: alarmExecutor{eng: eng, log: cs.log}}
	resp := cluster.NewResponder(cs.c, cs.cfg.Node, exec, server.ErrorStatus, cs.log)
	cs.owner = cluster.NewOwner(ownedSet{cs, local}, cs.pub, resp, cs.log)
	node, err := cs.c.NewNode(cs.owner, catalog, cluster.NodeOptions{Name: cs.cfg.Node, Selectors: cs.cfg.Selectors,
		Address: address, Logger: cs.log})
	if err != nil {
		return err
	}
	cs.node = node
	return nil
}

func (cs *clusterSide) isOwned(device string) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.owned[device]
}

// Replay serves the API's replays (Subscribe's since_ns): the stream up to
// its end, and QuestDB for what is older than the stream.
func (cs *clusterSide) Replay(ctx context.Context, devices []string, fromNs int64, fn func([]telemetry.Sample) error) error {
	return cs.reader.Replay(ctx, devices, fromNs, func(u cluster.Update) error { return fn(u.Samples) })
}

// archiveHistory is the cluster reader's archive: the node's QuestDB table
// of samples (every node's samples: one archiver wrote each).
type archiveHistory struct{ h *ingest.History }

// newArchiveHistory is nil (no archive: a replay starts at the stream's
// first sample) when h is.
func newArchiveHistory(h *ingest.History) cluster.History {
	if h == nil {
		return nil
	}
	return archiveHistory{h}
}

// Replay implements cluster.History.
func (a archiveHistory) Replay(ctx context.Context, devices []string, fromNs, toNs int64, fn func([]telemetry.Sample) error) error {
	var want map[string]bool
	if len(devices) > 0 {
		want = make(map[string]bool, len(devices))
		for _, d := range devices {
			want[d] = true
		}
	}
	return telemetry.ReadArchive(ctx, a.h, fromNs, toNs, nil, func(ss []telemetry.Sample) error {
		if want != nil {
			kept := ss[:0]
			for _, s := range ss {
				if want[s.Device] {
					kept = append(kept, s)
				}
			}
			if ss = kept; len(ss) == 0 {
				return nil
			}
		}
		return fn(ss)
	})
}

// Node and View serve the API's GetClusterView.
func (cs *clusterSide) Node() string { return cs.cfg.Node }

// View reads the cluster's state.
func (cs *clusterSide) View(ctx context.Context) (cluster.View, error) { return cs.c.View(ctx) }

// nodeService runs the lease keeper; when it stops, its devices are stopped
// and released, and the announcements in flight end.
func (cs *clusterSide) nodeService() supervisor.Service {
	return supervisor.ServiceFunc(func(ctx context.Context) error {
		err := cs.node.Serve(ctx)
		cs.owner.Wait()
		return err
	})
}

// publishService moves the local hub's samples (the owned devices') into the
// publisher, as many as it has room for, and runs the publisher. The rest
// waits in the hub's lossless subscription, which holds the devices back at
// its bound (the hub's watchdog reports it): a stream that is down or slow
// bounds memory on both sides.
func (cs *clusterSide) publishService(sub *telemetry.Subscription) supervisor.Service {
	return supervisor.ServiceFunc(func(ctx context.Context) error {
		pctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cs.pub.Serve(pctx) }()
		var buf []telemetry.Sample
		for {
			select {
			case <-ctx.Done():
				// What the devices published while stopping goes out too,
				// as far as there is room.
				if room := cs.pub.Room(); room > 0 { // Drain's 0 is "all"
					buf = sub.Drain(buf[:0], room)
					cs.pub.Publish(buf...)
				}
				cancel()
				return <-done
			case <-sub.Ready():
			}
			if cs.pub.WaitRoom(ctx) != nil {
				continue // stopping: see above
			}
			// Drain leaves a wake-up behind when samples remain.
			buf = sub.Drain(buf[:0], cs.pub.Room())
			cs.pub.Publish(buf...)
		}
	})
}

// mirrorService feeds the view hub from the stream: first every device's
// latest values, then everything from that moment on; device events update
// the API's device states.
func (cs *clusterSide) mirrorService(catalog []cluster.DeviceRef) supervisor.Service {
	return supervisor.ServiceFunc(func(ctx context.Context) error {
		names := make([]string, len(catalog))
		for i, d := range catalog {
			names[i] = d.Name
		}
		since := time.Now().UnixNano()
		// Who owns each device and in what state, as its last event says.
		events, err := cs.reader.LatestEvents(ctx, names)
		if err != nil {
			return err
		}
		for _, e := range events {
			cs.devices.adopt(e)
		}
		last := map[string]uint64{}
		latest, err := cs.reader.Latest(ctx, names)
		if err != nil {
			return err
		}
		for _, s := range latest {
			last[s.Key()] = s.Seq
		}
		cs.viewHub.Publish(latest...)
		return cs.reader.Subscribe(ctx, nil, since, func(u cluster.Update) error {
			if u.Event != nil {
				cs.devices.onEvent(*u.Event)
				return nil
			}
			fresh := u.Samples[:0:0]
			for _, s := range u.Samples {
				if s.Seq > last[s.Key()] {
					last[s.Key()] = s.Seq
					fresh = append(fresh, s)
				}
			}
			cs.viewHub.Publish(fresh...)
			return nil
		})
	})
}

// statesService publishes the owned devices' state changes to the stream.
func (cs *clusterSide) statesService() supervisor.Service {
	return supervisor.ServiceFunc(func(ctx context.Context) error {
		w := cs.mgr.WatchStates()
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-w.Ready():
			}
			for _, info := range w.Take() {
				if !cs.isOwned(info.Name) {
					continue
				}
				e := cluster.DeviceEvent{Device: info.Name, State: info.State.String(), Error: info.LastError,
					Info: encodeState(info)}
				if err := cs.pub.PublishEvent(ctx, e); err != nil && ctx.Err() == nil {
					cs.log.Warn("cluster: publish a device state", "device", info.Name, "err", err)
				}
			}
		}
	})
}

// ownedSet keeps the set of devices this node owns around the local devices.
type ownedSet struct {
	cs    *clusterSide
	local cluster.LocalDevices
}

func (o ownedSet) StartDevice(ctx context.Context, name string) error {
	o.cs.mu.Lock()
	o.cs.owned[name] = true
	o.cs.mu.Unlock()
	if err := o.local.StartDevice(ctx, name); err != nil {
		o.cs.mu.Lock()
		delete(o.cs.owned, name)
		o.cs.mu.Unlock()
		return err
	}
	return nil
}

func (o ownedSet) StopDevice(ctx context.Context, name string) error {
	o.cs.mu.Lock()
	delete(o.cs.owned, name)
	o.cs.mu.Unlock()
	return o.local.StopDevice(ctx, name)
}

// supervisedDevices starts and stops device processes as dynamic children of
// the devices supervisor.
type supervisedDevices struct {
	sup *supervisor.Supervisor
	mgr *devicemgr.Manager
}

func (s *supervisedDevices) StartDevice(_ context.Context, name string) error {
	for _, d := range s.mgr.Devices() {
		if d.Name() == name {
			return s.sup.Add(d.ChildSpec())
		}
	}
	return fmt.Errorf("device %q: %w", name, devicemgr.ErrNotFound)
}

func (s *supervisedDevices) StopDevice(_ context.Context, name string) error {
	return s.sup.Remove(name)
}

// executor runs routed commands and aborts on this node's device manager,
// and alarm actions on its alarm engine. The node the caller asked audits the
// request; this node's log names the caller of what changes a device.
type executor struct {
	mgr *devicemgr.Manager
	log *slog.Logger
	alarmExecutor
}

func (e executor) Send(ctx context.Context, device string, cmd cluster.Command, _ cluster.Caller) (cluster.Reply, error) {
	rep, err := e.mgr.Send(ctx, device, devicemgr.Command{Name: cmd.Name, Raw: cmd.Raw, Args: cmd.Args, Timeout: cmd.Timeout})
	return cluster.Reply{Text: rep.Text, Values: rep.Values}, err
}

func (e executor) Abort(_ context.Context, device, reason string, caller cluster.Caller) (string, error) {
	aborted, err := e.mgr.Abort(device, reason)
	e.log.Info("cluster: abort routed to this node", "device", device, "reason", reason, "aborted", aborted,
		"caller", caller.Name, "role", caller.Role, "via", caller.Node)
	return aborted, err
}

// addCluster adds the cluster's processes after the devices supervisor and
// before the API, in this order: states (the owned devices' state changes
// out), publish (their samples out; its hub subscription already exists),
// mirror (every device's samples and states in, for the API), alarm feed
// (every owner's alarm transitions in, for the API's watches), node (leases:
// starts the devices it wins under the devices supervisor). On shutdown the
// node stops and releases its devices first, then the publisher flushes.
func (a *app) addCluster(cfg *config.Config) error {
	cs := a.cluster
	catalog := cfg.DeviceRefs()
	address := cs.cfg.Node
	if g := a.api.GRPCAddr(); g != nil {
		address = g.String()
	}
	if cfg.Cluster.Address != "" {
		address = cfg.Cluster.Address
	}
	if err := cs.makeNode(a.devSup, catalog, address, a.alarms); err != nil {
		return err
	}
	cs.owner.BeforeStart = restoreAlarms(cs.c.Alarms(), a.alarms)
	sub := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "cluster", Policy: telemetry.Lossless})
	for _, c := range []supervisor.ChildSpec{
		{ID: "cluster-states", Service: cs.statesService()},
		{ID: "cluster-publish", Service: cs.publishService(sub), Shutdown: 10 * time.Second},
		{ID: "cluster-mirror", Service: cs.mirrorService(catalog)},
		{ID: "cluster-alarm-feed", Service: cs.alarms.feedService()},
		{ID: "cluster-node", Service: cs.nodeService(), Shutdown: 15 * time.Second},
	} {
		if err := a.root.Add(c); err != nil {
			return err
		}
	}
	return nil
}

// archiveAppender is the cluster archiver's archive: the node's QuestDB
// writers (the samples' and the wide layout's), fed through a hub of their
// own; Append returns once QuestDB acknowledged (or dead-lettered) every
// sample it was given.
type archiveAppender struct {
	hub *telemetry.Hub
	ws  []archivedWaiter
}

// archivedWaiter is an archive's writer (ingest.Writer.Archived).
type archivedWaiter interface {
	Archived(ctx context.Context) error
}

func (a archiveAppender) Append(ctx context.Context, ss []telemetry.Sample) error {
	a.hub.Publish(ss...)
	for _, w := range a.ws {
		if err := w.Archived(ctx); err != nil {
			return err
		}
	}
	return nil
}
