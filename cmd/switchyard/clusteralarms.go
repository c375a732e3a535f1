package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/supervisor"
)

// alarmSaver keeps the cluster's copy of this node's alarm states: a Sink of
// the alarm engine (Record never blocks: the latest state per channel waits in
// a map) and a service that saves what changed to the alarm bucket.
type alarmSaver struct {
	store *cluster.AlarmStore
	node  string
	log   *slog.Logger

	mu      sync.Mutex
	pending map[string]alarm.Alarm
	wake    chan struct{}
}

func newAlarmSaver(store *cluster.AlarmStore, node string, log *slog.Logger) *alarmSaver {
	return &alarmSaver{store: store, node: node, log: log, pending: map[string]alarm.Alarm{}, wake: make(chan struct{}, 1)}
}

// Record implements alarm.Sink.
func (s *alarmSaver) Record(_ context.Context, t alarm.Transition) {
	s.mu.Lock()
	s.pending[t.Alarm.Key()] = t.Alarm
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Serve saves until ctx ends, then once more (bounded).
func (s *alarmSaver) Serve(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.save(fctx)
			cancel()
			return nil
		case <-s.wake:
		}
		s.save(ctx)
	}
}

func (s *alarmSaver) save(ctx context.Context) {
	s.mu.Lock()
	batch := s.pending
	s.pending = map[string]alarm.Alarm{}
	s.mu.Unlock()
	for key, a := range batch {
		if err := s.store.Save(ctx, alarmStateOf(&a, s.node)); err != nil {
			s.log.Warn("cluster: save alarm state (will retry with the next change)", "alarm", key, "err", err)
			s.mu.Lock()
			if _, newer := s.pending[key]; !newer {
				s.pending[key] = a
			}
			s.mu.Unlock()
		}
	}
}

var _ supervisor.Service = (*alarmSaver)(nil)

func alarmStateOf(a *alarm.Alarm, node string) cluster.AlarmState {
	o := alarm.OperatorOf(a)
	return cluster.AlarmState{Device: o.Device, Channel: o.Channel, Condition: o.Condition.String(), Severity: o.Severity.String(),
		SinceNs: unixNs(o.Since), Latched: o.Latched.String(), Acked: o.Acked, AckedBy: o.AckedBy, AckComment: o.AckComment,
		AckedAtNs: unixNs(o.AckedAt), ShelvedUntilNs: unixNs(o.ShelvedUntil), ShelvedBy: o.ShelvedBy, ShelveComment: o.ShelveComment,
		Node: node, UpdatedNs: time.Now().UnixNano()}
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
