package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/feed"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/supervisor"
)

// alarmSaver gives the cluster this node's alarm transitions, of the devices
// it owns: each transition, in order, to the stream for every node's
// WatchAlarms, and each alarm's state after it to the alarm bucket, for the
// next owner to restore and for every node to list. It is a Sink of the
// alarm engine (Record never blocks: transitions wait in a bounded queue
// that drops the oldest, counted; the latest state per alarm in a
// feed.Queue keyed by alarm) and a service that publishes and saves.
type alarmSaver struct {
	store *cluster.AlarmStore
	pub   *cluster.Publisher
	owned func(device string) bool
	node  string
	log   *slog.Logger

	queue  *feed.Queue[alarm.Transition] // DropOldest: transitions to publish
	latest *feed.Queue[alarm.Alarm]      // LatestPerKey by alarm key: states to save
	retry  map[string]alarm.Alarm        // failed saves, retried with the next change; Serve's own
	failed atomic.Uint64                 // transitions not published
}

// alarmQueue bounds the transitions waiting to be published.
const alarmQueue = 4096

// alarmSaverCapacity bounds the alarms waiting to be saved: one per alarm
// channel, so only a node with more alarm channels than this drops one (the
// oldest, counted by the queue) until its next change.
const alarmSaverCapacity = 1 << 20

func newAlarmSaver(store *cluster.AlarmStore, pub *cluster.Publisher, owned func(string) bool, node string, log *slog.Logger) *alarmSaver {
	return &alarmSaver{store: store, pub: pub, owned: owned, node: node, log: log,
		queue: feed.New(feed.Options[alarm.Transition]{Policy: feed.DropOldest, Capacity: alarmQueue}),
		latest: feed.NewKeyed(feed.Options[alarm.Alarm]{Policy: feed.LatestPerKey, Capacity: alarmSaverCapacity},
			func(a *alarm.Alarm) string { return a.Key() }),
		retry: map[string]alarm.Alarm{}}
}

// Record implements alarm.Sink. Transitions of devices this node does not
// own (its own system channels; a device that left it, whose old alarm
// machine still ticks) stay on this node.
func (s *alarmSaver) Record(_ context.Context, t alarm.Transition) {
	if !s.owned(t.Alarm.Device) {
		return
	}
	s.queue.Offer(t)
	s.latest.Offer(t.Alarm)
}

// Stats returns how many transitions were not published: dropped from the
// full queue, or refused by the stream.
func (s *alarmSaver) Stats() (dropped, failed uint64) {
	return s.queue.Dropped(), s.failed.Load()
}

// Serve publishes and saves until ctx ends, then once more (bounded).
func (s *alarmSaver) Serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.publish(fctx)
			s.save(fctx)
			cancel()
			return nil
		case <-s.queue.Ready():
		case <-s.latest.Ready():
		}
		s.publish(ctx)
		s.save(ctx)
	}
}

// publish sends the queued transitions, in order. One the stream refuses is
// lost to the other nodes' watches (counted, logged): waiting for it would
// hold up every later one, and its state still reaches the bucket.
func (s *alarmSaver) publish(ctx context.Context) {
	for _, t := range s.queue.Drain(nil, 0) {
		if err := s.pub.PublishAlarm(ctx, t.Alarm.Device, server.EncodeTransition(&t)); err != nil {
			s.failed.Add(1)
			s.log.Warn("cluster: publish an alarm transition (other nodes' watches miss it)", "alarm", t.Alarm.Key(),
				"event", t.Event.String(), "err", err)
		}
	}
}

// save saves what changed since, and what failed before unless it changed
// again meanwhile (the newer state wins).
func (s *alarmSaver) save(ctx context.Context) {
	for _, a := range s.latest.Drain(nil, 0) {
		s.retry[a.Key()] = a
	}
	for key, a := range s.retry {
		if err := s.store.Save(ctx, alarmStateOf(&a, s.node)); err != nil {
			s.log.Warn("cluster: save alarm state (will retry with the next change)", "alarm", key, "err", err)
			continue
		}
		delete(s.retry, key)
	}
}

var _ supervisor.Service = (*alarmSaver)(nil)

func alarmStateOf(a *alarm.Alarm, node string) cluster.AlarmState {
	o := alarm.OperatorOf(a)
	return cluster.AlarmState{Device: o.Device, Channel: o.Channel, Condition: o.Condition.String(), Severity: o.Severity.String(),
		SinceNs: unixNs(o.Since), Latched: o.Latched.String(), Acked: o.Acked, AckedBy: o.AckedBy, AckComment: o.AckComment,
		AckedAtNs: unixNs(o.AckedAt), ShelvedUntilNs: unixNs(o.ShelvedUntil), ShelvedBy: o.ShelvedBy, ShelveComment: o.ShelveComment,
		Node: node, UpdatedNs: time.Now().UnixNano(), Alarm: server.EncodeAlarm(a)}
}

func operatorOf(s cluster.AlarmState) (alarm.Operator, error) {
	cond, err := alarm.ParseCondition(s.Condition)
	if err != nil {
		return alarm.Operator{}, err
	}
	sev, err := alarm.ParseSeverity(s.Severity)
	if err != nil {
		return alarm.Operator{}, err
	}
	latched, err := alarm.ParseSeverity(s.Latched)
	if err != nil {
		return alarm.Operator{}, err
	}
	return alarm.Operator{Device: s.Device, Channel: s.Channel, Condition: cond, Severity: sev, Since: fromNs(s.SinceNs),
		Latched: latched, Acked: s.Acked, AckedBy: s.AckedBy, AckComment: s.AckComment, AckedAt: fromNs(s.AckedAtNs),
		ShelvedUntil: fromNs(s.ShelvedUntilNs), ShelvedBy: s.ShelvedBy, ShelveComment: s.ShelveComment}, nil
}

// restoreAlarms loads a device's saved alarm states into the engine before the
// device starts on this node.
func restoreAlarms(store *cluster.AlarmStore, eng *alarm.Engine) func(ctx context.Context, device string) error {
	return func(ctx context.Context, device string) error {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		saved, err := store.Load(lctx, device)
		if err != nil {
			return err
		}
		ops := make([]alarm.Operator, 0, len(saved))
		for _, s := range saved {
			op, err := operatorOf(s)
			if err != nil {
				return err
			}
			ops = append(ops, op)
		}
		if len(ops) == 0 {
			return nil
		}
		return eng.Restore(lctx, ops)
	}
}
