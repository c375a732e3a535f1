package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/server"
)

// deviceState is the dynamic part of a devicemgr.Info as an owner publishes it
// (the configuration part every node has).
type deviceState struct {
	State       devicemgr.State `json:"state"`
	LastError   string          `json:"last_error,omitempty"`
	Restarts    int             `json:"restarts,omitempty"`
	ConnectedNs int64           `json:"connected_ns,omitempty"`
	NextNs      int64           `json:"next_ns,omitempty"`
	Identity    string          `json:"identity,omitempty"`
	Overruns    uint64          `json:"overruns,omitempty"`
	ChangedNs   int64           `json:"changed_ns,omitempty"`
}

func encodeState(i devicemgr.Info) json.RawMessage {
	b, _ := json.Marshal(deviceState{State: i.State, LastError: i.LastError, Restarts: i.Restarts,
		ConnectedNs: unixNs(i.ConnectedSince), NextNs: unixNs(i.NextAttempt), Identity: i.Identity,
		Overruns: i.Overruns, ChangedNs: unixNs(i.ChangedAt)})
	return b
}

func unixNs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNs(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// clusterDevices is the API's view of every configured device in a cluster:
// its configuration from this node's device manager, its state and owner as
// the stream reports them, commands run here when this node owns the device
// and routed to the owner otherwise.
type clusterDevices struct {
	mgr *devicemgr.Manager
	cs  *clusterSide

	mu     sync.Mutex
	states map[string]devicemgr.Info // dynamic fields and Node, by device
	epochs map[string]uint64
	feed   devicemgr.StateFeed
}

func newClusterDevices(mgr *devicemgr.Manager, cs *clusterSide) *clusterDevices {
	return &clusterDevices{mgr: mgr, cs: cs, states: map[string]devicemgr.Info{}, epochs: map[string]uint64{}}
}

// merged is the device's configuration with the cluster's state; called locked.
func (d *clusterDevices) merged(cfg devicemgr.Info) devicemgr.Info {
	st, ok := d.states[cfg.Name]
	if !ok {
		cfg.State, cfg.ConnectedSince, cfg.NextAttempt = devicemgr.Stopped, time.Time{}, time.Time{}
		return cfg
	}
	cfg.State, cfg.LastError, cfg.Restarts = st.State, st.LastError, st.Restarts
	cfg.ConnectedSince, cfg.NextAttempt, cfg.Identity = st.ConnectedSince, st.NextAttempt, st.Identity
	cfg.Overruns, cfg.ChangedAt, cfg.Node = st.Overruns, st.ChangedAt, st.Node
	return cfg
}

// List implements server.Devices.
func (d *clusterDevices) List() []devicemgr.Info {
	list := d.mgr.List()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range list {
		list[i] = d.merged(list[i])
	}
	return list
}

// Get implements server.Devices.
func (d *clusterDevices) Get(name string) (devicemgr.Info, error) {
	info, err := d.mgr.Get(name)
	if err != nil {
		return info, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.merged(info), nil
}

// Send implements server.Devices: here if this node owns the device, else
// at its owner (DEVICE_IN_FAILOVER when it has none).
func (d *clusterDevices) Send(ctx context.Context, device string, cmd devicemgr.Command) (devicemgr.Reply, error) {
	if _, err := d.mgr.Get(device); err != nil {
		return devicemgr.Reply{}, err
	}
	if d.cs.isOwned(device) {
		return d.mgr.Send(ctx, device, cmd)
	}
	name, role := server.CallerOf(ctx)
	rep, err := d.cs.router.Send(ctx, device, cluster.Command{Name: cmd.Name, Raw: cmd.Raw, Args: cmd.Args, Timeout: cmd.Timeout},
		cluster.Caller{Name: name, Role: role})
	return devicemgr.Reply{Text: rep.Text, Values: rep.Values}, err
}

// Abort implements server.Devices: here if this node owns the device, else
// at its owner with the caller's deadline and identity.
func (d *clusterDevices) Abort(ctx context.Context, device, reason string) (string, error) {
	if _, err := d.mgr.Get(device); err != nil {
		return "", err
	}
	if d.cs.isOwned(device) {
		return d.mgr.Abort(device, reason)
	}
	name, role := server.CallerOf(ctx)
	return d.cs.router.Abort(ctx, device, reason, cluster.Caller{Name: name, Role: role})
}

// WatchStates implements server.Devices.
func (d *clusterDevices) WatchStates() *devicemgr.StateWatch { return d.feed.Watch() }

// WatchEvery implements server.Devices.
func (d *clusterDevices) WatchEvery(capacity int) *devicemgr.StateWatch {
	return d.feed.WatchEvery(capacity)
}

// Tags are the configuration's, whichever node owns the device.
func (d *clusterDevices) Tags(name string) (map[string]string, bool) { return d.mgr.Tags(name) }

// adopt takes a device's last event as its state at start: whoever published
// it is taken as the owner (later events are then judged against it).
func (d *clusterDevices) adopt(e cluster.DeviceEvent) {
	d.mu.Lock()
	if e.State != cluster.StateOwned && e.State != cluster.StateReleased {
		d.states[e.Device] = devicemgr.Info{Name: e.Device, Node: e.Node}
	}
	d.mu.Unlock()
	d.onEvent(e)
}

// onEvent applies a device event from the stream. Events of an owner older
// than the current one (a release published late by a node that was cut off)
// change nothing.
func (d *clusterDevices) onEvent(e cluster.DeviceEvent) {
	cfg, err := d.mgr.Get(e.Device)
	if err != nil {
		return
	}
	d.mu.Lock()
	st := d.states[e.Device]
	switch e.State {
	case cluster.StateOwned:
		if e.Epoch < d.epochs[e.Device] {
			d.mu.Unlock()
			return
		}
		d.epochs[e.Device] = e.Epoch
		st = devicemgr.Info{Name: e.Device, State: devicemgr.Connecting, Node: e.Node, ChangedAt: fromNs(e.TimeNs)}
	case cluster.StateReleased:
		if st.Node != e.Node {
			d.mu.Unlock()
			return
		}
		st = devicemgr.Info{Name: e.Device, State: devicemgr.Stopped, ChangedAt: fromNs(e.TimeNs)}
	default:
		var ds deviceState
		if st.Node != e.Node || json.Unmarshal(e.Info, &ds) != nil {
			d.mu.Unlock()
			return
		}
		st = devicemgr.Info{Name: e.Device, Node: e.Node, State: ds.State, LastError: ds.LastError, Restarts: ds.Restarts,
			ConnectedSince: fromNs(ds.ConnectedNs), NextAttempt: fromNs(ds.NextNs), Identity: ds.Identity,
			Overruns: ds.Overruns, ChangedAt: fromNs(ds.ChangedNs)}
	}
	d.states[e.Device] = st
	info := d.merged(cfg)
	d.mu.Unlock()
	d.feed.Publish(info)
}
