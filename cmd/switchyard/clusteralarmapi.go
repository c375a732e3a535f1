package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/supervisor"
)

// clusterAlarms is the API's alarm service on a cluster node: every
// device's alarms, whichever node owns it.
//
//   - An operator action (Acknowledge, Shelve, SetAlarmLimits) and
//     GetAlarmLimits run here when this node owns the device (or it is not a
//     configured device: the node's own system channels), and at the owner
//     otherwise, by NATS request with the caller's deadline and identity
//     (DEVICE_IN_FAILOVER when no node owns it).
//   - ListActiveAlarms lists this node's alarms of the devices it owns and of
//     its system channels, and the alarms the owners of the other devices
//     saved in the cluster's alarm bucket after their last transition.
//   - WatchAlarms watches every owner's transitions from the stream, and
//     this node's system channels' from its engine (feedService).
type clusterAlarms struct {
	eng      *alarm.Engine
	cs       *clusterSide
	catalog  map[string]bool // the configured devices: the cluster's
	watchers *alarm.Watchers
	log      *slog.Logger
}

func newClusterAlarms(eng *alarm.Engine, cs *clusterSide, catalog []cluster.DeviceRef, log *slog.Logger) *clusterAlarms {
	c := &clusterAlarms{eng: eng, cs: cs, catalog: map[string]bool{}, watchers: alarm.NewWatchers(0), log: log}
	for _, d := range catalog {
		c.catalog[d.Name] = true
	}
	return c
}

// local reports whether this node's engine evaluates the device's alarms.
func (c *clusterAlarms) local(device string) bool { return !c.catalog[device] || c.cs.isOwned(device) }

// errClusterAlarms: the alarm bucket could not be read (the node cannot
// reach NATS). A partial list would hide alarms, so the request fails.
type errClusterAlarms struct{ err error }

func (e *errClusterAlarms) Error() string {
	return "the alarms of devices other cluster nodes own cannot be read now: " + e.err.Error()
}
func (e *errClusterAlarms) Unwrap() error       { return e.err }
func (e *errClusterAlarms) ErrorReason() string { return "ALARMS_NOT_RUNNING" }
func (e *errClusterAlarms) ErrorCode() string   { return "unavailable" }

// List implements server.Alarms.
func (c *clusterAlarms) List(ctx context.Context, activeOnly bool) ([]alarm.Alarm, error) {
	mine, err := c.eng.List(ctx, activeOnly)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(mine, func(a alarm.Alarm) bool { return !c.local(a.Device) })
	saved, err := c.cs.c.Alarms().All(ctx)
	if err != nil {
		return nil, &errClusterAlarms{err}
	}
	for _, st := range saved {
		if c.local(st.Device) || len(st.Alarm) == 0 {
			continue
		}
		a, err := server.DecodeAlarm(st.Alarm)
		if err != nil {
			c.log.Warn("cluster: an alarm saved in the cluster cannot be read", "device", st.Device, "channel", st.Channel,
				"node", st.Node, "err", err)
			continue
		}
		if !activeOnly || a.Active() {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b alarm.Alarm) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Channel, b.Channel))
	})
	return out, nil
}

// Watch implements server.Alarms.
func (c *clusterAlarms) Watch(match func(*alarm.Transition) bool) *alarm.Watch {
	return c.watchers.Watch(match)
}

// Ack implements server.Alarms.
func (c *clusterAlarms) Ack(ctx context.Context, device, channel, who, comment string) (alarm.Alarm, error) {
	return c.act(ctx, device, cluster.AlarmAction{Op: cluster.AlarmAck, Channel: channel, Who: who, Comment: comment})
}

// Shelve implements server.Alarms.
func (c *clusterAlarms) Shelve(ctx context.Context, device, channel string, until time.Time, who, comment string) (alarm.Alarm, error) {
	return c.act(ctx, device, cluster.AlarmAction{Op: cluster.AlarmShelve, Channel: channel, Who: who, Comment: comment,
		UntilNs: unixNs(until)})
}

// Get implements server.Alarms.
func (c *clusterAlarms) Get(ctx context.Context, device, channel string) (alarm.Alarm, error) {
	return c.act(ctx, device, cluster.AlarmAction{Op: cluster.AlarmGet, Channel: channel})
}

// SetLimits implements server.Alarms.
func (c *clusterAlarms) SetLimits(ctx context.Context, device, channel string, l alarm.Limits, who, comment string) (alarm.Alarm, error) {
	return c.act(ctx, device, cluster.AlarmAction{Op: cluster.AlarmSetLimits, Channel: channel, Who: who, Comment: comment,
		Limits: server.EncodeLimits(&l)})
}

// act runs an action here or at the device's owner.
func (c *clusterAlarms) act(ctx context.Context, device string, act cluster.AlarmAction) (alarm.Alarm, error) {
	if c.local(device) {
		return runAlarmAction(ctx, c.eng, device, act)
	}
	name, role := server.CallerOf(ctx)
	b, err := c.cs.router.Alarm(ctx, device, act, cluster.Caller{Name: name, Role: role})
	if err != nil {
		return alarm.Alarm{}, remoteAlarmErr(err)
	}
	a, err := server.DecodeAlarm(b)
	if err != nil {
		return alarm.Alarm{}, fmt.Errorf("device %s: the owner's answer: %w", device, err)
	}
	return a, nil
}

// runAlarmAction runs an action on this node's engine.
func runAlarmAction(ctx context.Context, eng *alarm.Engine, device string, act cluster.AlarmAction) (alarm.Alarm, error) {
	switch act.Op {
	case cluster.AlarmAck:
		return eng.Ack(ctx, device, act.Channel, act.Who, act.Comment)
	case cluster.AlarmShelve:
		return eng.Shelve(ctx, device, act.Channel, fromNs(act.UntilNs), act.Who, act.Comment)
	case cluster.AlarmSetLimits:
		l, err := server.DecodeLimits(act.Limits)
		if err != nil {
			return alarm.Alarm{}, fmt.Errorf("%w: %w", alarm.ErrBadRequest, err)
		}
		return eng.SetLimits(ctx, device, act.Channel, l, act.Who, act.Comment)
	case cluster.AlarmGet:
		return eng.Get(ctx, device, act.Channel)
	}
	return alarm.Alarm{}, fmt.Errorf("%w: unknown alarm action %q", alarm.ErrBadRequest, act.Op)
}

// remoteAlarmError is an alarm error from the owner: as the owner mapped it,
// and also the alarm package's sentinel for it, so that this node's checks
// (errors.Is(err, alarm.ErrNotFound)) work as for a local alarm.
type remoteAlarmError struct {
	*cluster.RemoteError
	sentinel error
}

func (e *remoteAlarmError) Unwrap() []error { return []error{e.RemoteError, e.sentinel} }

func remoteAlarmErr(err error) error {
	var re *cluster.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	for reason, sentinel := range map[string]error{"ALARM_NOT_FOUND": alarm.ErrNotFound,
		"BAD_ALARM_REQUEST": alarm.ErrBadRequest, "ALARMS_NOT_RUNNING": alarm.ErrNotRunning} {
		if re.Reason == reason {
			return &remoteAlarmError{re, sentinel}
		}
	}
	return err
}

// feedService feeds the API's alarm watches: every owner's transitions from
// the stream, and this node's system channels' from its engine. It runs
// until ctx ends; a failure of the stream's watch ends it (its supervisor
// restarts it; watches open meanwhile miss those transitions).
func (c *clusterAlarms) feedService() supervisor.Service {
	return supervisor.ServiceFunc(func(ctx context.Context) error {
		w := c.eng.Watch(func(t *alarm.Transition) bool { return !c.catalog[t.Alarm.Device] })
		defer w.Close()
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- c.cs.reader.WatchAlarms(wctx, func(device string, b []byte) error {
				t, err := server.DecodeTransition(b)
				if err != nil {
					c.log.Warn("cluster: an alarm transition from the stream cannot be read", "device", device, "err", err)
					return nil
				}
				c.watchers.Offer(&t)
				return nil
			})
		}()
		defer func() {
			cancel()
			<-done
		}()
		for {
			select {
			case <-ctx.Done():
				return nil
			case err := <-done:
				done <- err // for the deferred wait
				return fmt.Errorf("cluster: watch of alarm transitions: %w", err)
			case <-w.Ready():
				for _, t := range w.Take() {
					c.watchers.Offer(&t)
				}
			}
		}
	})
}

// alarmExecutor runs routed alarm actions on this node's engine, and logs
// each with the caller it came from.
type alarmExecutor struct {
	eng *alarm.Engine
	log *slog.Logger
}

func (e alarmExecutor) Alarm(ctx context.Context, device string, act cluster.AlarmAction, caller cluster.Caller) ([]byte, error) {
	if act.Op != cluster.AlarmGet {
		e.log.Info("cluster: alarm action routed to this node", "device", device, "channel", act.Channel, "op", string(act.Op),
			"who", act.Who, "caller", caller.Name, "role", caller.Role, "via", caller.Node)
	}
	a, err := runAlarmAction(ctx, e.eng, device, act)
	if err != nil {
		return nil, err
	}
	return server.EncodeAlarm(&a), nil
}
