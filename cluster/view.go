package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// View is the cluster as one node sees it: for an observer next to each
// node's supervision tree.
type View struct {
	Nodes  []NodeView
	Leases []LeaseView
	Stream StreamView
	// Archiver is the archive's lag behind the stream; ArchiverErr says why
	// it is unknown (no archiver has started yet).
	Archiver    Lag
	ArchiverErr string
}

// NodeView is one registered node.
type NodeView struct {
	Name, Address string
	Selectors     []Selector
	Started       time.Time
	Devices       int // leases it holds
}

// LeaseView is one device's lease.
type LeaseView struct {
	Device, Node string
	Acquired     time.Time // when this node took the device
	Renewed      time.Time // last renewal the server stored
	Revision     uint64
}

// StreamView is the telemetry stream's state.
type StreamView struct {
	Messages, Bytes uint64
	First, Last     time.Time
}

// View reads the cluster's state.
func (c *Cluster) View(ctx context.Context) (View, error) {
	var v View
	count := map[string]int{}
	leases, err := entries(ctx, c.leases)
	if err != nil {
		return View{}, err
	}
	for _, e := range leases {
		dev, err := ParseToken(e.Key)
		if err != nil {
			continue
		}
		var rec leaseRecord
		if json.Unmarshal(e.Value, &rec) != nil {
			continue
		}
		count[rec.Node]++
		v.Leases = append(v.Leases, LeaseView{Device: dev, Node: rec.Node, Acquired: time.Unix(0, rec.AcquiredNs),
			Renewed: e.Created, Revision: e.Rev})
	}
	nodes, err := entries(ctx, c.nodes)
	if err != nil {
		return View{}, err
	}
	for _, e := range nodes {
		var rec nodeRecord
		if json.Unmarshal(e.Value, &rec) != nil {
			continue
		}
		v.Nodes = append(v.Nodes, NodeView{Name: rec.Node, Address: rec.Address, Selectors: rec.Selectors,
			Started: time.Unix(0, rec.StartedNs), Devices: count[rec.Node]})
	}
	sort.Slice(v.Leases, func(i, j int) bool { return v.Leases[i].Device < v.Leases[j].Device })
	sort.Slice(v.Nodes, func(i, j int) bool { return v.Nodes[i].Name < v.Nodes[j].Name })
	info, err := c.stream.Info(ctx)
	if err != nil {
		return View{}, err
	}
	v.Stream = StreamView{Messages: info.State.Msgs, Bytes: info.State.Bytes, First: info.State.FirstTime, Last: info.State.LastTime}
	if v.Archiver, err = c.ArchiverLag(ctx); err != nil {
		v.ArchiverErr = err.Error()
	}
	return v, nil
}

// entries reads every live key of a bucket.
func entries(ctx context.Context, kv jetstream.KeyValue) ([]kvEntry, error) {
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	var out []kvEntry
	err = initial(ctx, w, func(e jetstream.KeyValueEntry) error {
		out = append(out, entryOf(e))
		return nil
	})
	return out, err
}

// initial calls fn with each entry a new watcher delivers before the end of
// the initial values, then stops the watcher.
func initial(ctx context.Context, w jetstream.KeyWatcher, fn func(jetstream.KeyValueEntry) error) error {
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watch ended")
			}
			if e == nil {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
		}
	}
}
