package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LocalDevices is the node's device supervisor: it runs the device processes
// this node owns (devicemgr's Manager in the wiring).
type LocalDevices interface {
	// StartDevice starts the device's process; it need not wait for the instrument.
	StartDevice(ctx context.Context, name string) error
	// StopDevice stops the process and returns once its connection is closed.
	StopDevice(ctx context.Context, name string) error
}

// Owner is the Devices a Node drives on a full cluster member: on winning a
// device it readies the publisher (numbering continues from the stream),
// starts the local process, answers the device's commands and announces the
// new owner; on losing one it stops the process first (nothing else may delay
// that), then stops answering, ends publishing and announces the release.
type Owner struct {
	local LocalDevices
	pub   *Publisher
	resp  *Responder
	log   *slog.Logger
	wg    sync.WaitGroup

	// BeforeStart, when set, runs before a won device starts (the wiring
	// restores its alarm state from the cluster there); its error is logged
	// and the device starts anyway.
	BeforeStart func(ctx context.Context, device string) error
}

// NewOwner wires the cluster's side of ownership around local.
func NewOwner(local LocalDevices, pub *Publisher, resp *Responder, log *slog.Logger) *Owner {
	if log == nil {
		log = slog.Default()
	}
	return &Owner{local: local, pub: pub, resp: resp, log: log}
}

// StartDevice implements Devices.
func (o *Owner) StartDevice(ctx context.Context, name string, epoch uint64) error {
	// The announcement goes first so that subscribers see the new owner
	// before its samples; it is bounded and failing it stops nothing.
	actx, cancel := context.WithTimeout(ctx, time.Second)
	if err := o.pub.PublishEvent(actx, DeviceEvent{Device: name, Epoch: epoch, State: StateOwned}); err != nil {
		o.log.Info("cluster: announce device ownership", "device", name, "err", err)
	}
	cancel()
	if o.BeforeStart != nil {
		if err := o.BeforeStart(ctx, name); err != nil {
			o.log.Warn("cluster: before starting a won device", "device", name, "err", err)
		}
	}
	o.pub.Begin(name, epoch)
	if err := o.local.StartDevice(ctx, name); err != nil {
		o.pub.End(name)
		return err
	}
	if err := o.resp.Start(ctx, name); err != nil {
		o.log.Warn("cluster: answer commands of an owned device", "device", name, "err", err)
	}
	return nil
}

// StopDevice implements Devices.
func (o *Owner) StopDevice(ctx context.Context, name string) error {
	err := o.local.StopDevice(ctx, name)
	o.resp.Stop(name)
	o.pub.End(name)
	o.announce(DeviceEvent{Device: name, State: StateReleased})
	return err
}

// announce publishes a release in the background: a node fencing itself may
// have no connection, and must not wait for one.
func (o *Owner) announce(e DeviceEvent) {
	e.TimeNs = time.Now().UnixNano()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = o.resp.Sync(ctx)
		if err := o.pub.PublishEvent(ctx, e); err != nil {
			o.log.Info("cluster: announce device ownership", "device", e.Device, "state", e.State, "err", err)
		}
	}()
}

// Wait waits for the announcements in flight and the commands in progress.
func (o *Owner) Wait() {
	o.wg.Wait()
	o.resp.Wait()
}
