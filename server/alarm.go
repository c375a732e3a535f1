package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/switchyard/switchyard/alarm"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// Alarms is what the server needs from the alarm engine; *alarm.Engine is one.
type Alarms interface {
	List(ctx context.Context, activeOnly bool) ([]alarm.Alarm, error)
	Watch(match func(*alarm.Transition) bool) *alarm.Watch
	Ack(ctx context.Context, device, channel, who, comment string) (alarm.Alarm, error)
	Shelve(ctx context.Context, device, channel string, until time.Time, who, comment string) (alarm.Alarm, error)
	Get(ctx context.Context, device, channel string) (alarm.Alarm, error)
	SetLimits(ctx context.Context, device, channel string, l alarm.Limits, who, comment string) (alarm.Alarm, error)
}

// alarmService implements AlarmService once; see deviceService for the
// core/adapter split.
type alarmService struct {
	alarms  Alarms
	devices Devices      // to tell an unknown device or channel from a quiet one
	archive AlarmArchive // for since_ns; nil without archiving
	life    context.Context
	metrics *metrics
	limits  Limits // ReplayTimeout
	log     *slog.Logger
}

// alarmFilter is a compiled AlarmFilter.
type alarmFilter struct{ devs, chans, groups globs }

func compileAlarmFilter(field string, f *pb.AlarmFilter) (alarmFilter, error) {
	var af alarmFilter
	var err error
	if af.devs, err = compileGlobs(field+".devices", f.GetDevices()); err != nil {
		return af, err
	}
	if af.chans, err = compileGlobs(field+".channels", f.GetChannels()); err != nil {
		return af, err
	}
	if af.groups, err = compileGlobs(field+".groups", f.GetGroups()); err != nil {
		return af, err
	}
	return af, nil
}

func (f alarmFilter) match(a *alarm.Alarm) bool {
	return f.devs.match(a.Device) && f.chans.match(a.Channel) && f.groups.match(a.Group)
}

func requireChannel(device, channel string) error {
	if device == "" {
		return errField("device", "required")
	}
	if channel == "" {
		return errField("channel", "required")
	}
	return nil
}

func (s *alarmService) listActiveAlarms(ctx context.Context, req *pb.ListActiveAlarmsRequest) (*pb.ListActiveAlarmsResponse, error) {
	f, err := compileAlarmFilter("filter", req.GetFilter())
	if err != nil {
		return nil, err
	}
	all, err := s.alarms.List(ctx, true)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	resp := &pb.ListActiveAlarmsResponse{}
	for i := range all {
		if f.match(&all[i]) && (req.GetIncludeShelved() || !all[i].Shelved(now)) {
			resp.Alarms = append(resp.Alarms, alarmToProto(&all[i]))
		}
	}
	return resp, nil
}

// watchAlarms sends the transitions the filter selects until ctx ends or the
// server shuts down; with since_ns, first the archived ones from then on (see
// replayAlarms). The watch exists before the replay settles the archive, so
// every transition is in one or the other (the engine archives a transition
// before any watch sees it); the live ones the replay sent already (not newer
// than the newest it sent: transition times are unique and increasing) are
// skipped.
func (s *alarmService) watchAlarms(ctx context.Context, req *pb.WatchAlarmsRequest, out streamOut[pb.WatchAlarmsResponse]) error {
	f, err := compileAlarmFilter("filter", req.GetFilter())
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("WatchAlarms")()
	w := s.alarms.Watch(func(t *alarm.Transition) bool { return f.match(&t.Alarm) })
	defer w.Close()
	if err := out.header(); err != nil {
		return err
	}
	replayed := int64(-1) // µs of the newest transition the replay sent
	if since := req.GetSinceNs(); since > 0 {
		var end *pb.ReplayEnd
		if after, ordered := w.After(); !ordered {
			// A cluster node's watch: every owner's transitions, out of time
			// order; no point to join a replay to, and none to tell.
			end = &pb.ReplayEnd{Reason: noOrderedReplay}
		} else {
			if end, replayed, err = s.replayAlarms(ctx, since, f, out); err != nil {
				return err
			}
			end.LiveAfterNs = max(after, replayed) * 1000
		}
		if err := out.send(&pb.WatchAlarmsResponse{ReplayEnd: end, Dropped: w.Dropped()}); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-w.Ready():
		}
		for _, t := range w.Take() {
			if t.Time.UnixMicro() <= replayed {
				continue
			}
			if err := out.send(&pb.WatchAlarmsResponse{Transition: transitionToProto(&t), Dropped: w.Dropped()}); err != nil {
				return err
			}
		}
	}
}

func (s *alarmService) acknowledge(ctx context.Context, req *pb.AcknowledgeRequest) (*pb.AcknowledgeResponse, error) {
	if err := requireChannel(req.GetDevice(), req.GetChannel()); err != nil {
		return nil, err
	}
	a, err := s.alarms.Ack(ctx, req.GetDevice(), req.GetChannel(), who(ctx, req.GetWho()), req.GetComment())
	if err != nil {
		return nil, err
	}
	return &pb.AcknowledgeResponse{Alarm: alarmToProto(&a)}, nil
}

func (s *alarmService) shelve(ctx context.Context, req *pb.ShelveRequest) (*pb.ShelveResponse, error) {
	if err := requireChannel(req.GetDevice(), req.GetChannel()); err != nil {
		return nil, err
	}
	var until time.Time
	if ns := req.GetUntilNs(); ns < 0 {
		return nil, errField("until_ns", "must be >= 0, got %d", ns)
	} else if ns > 0 {
		until = time.Unix(0, ns)
		if !until.After(time.Now()) {
			return nil, errField("until_ns", "must be in the future, got %s", until.UTC().Format(time.RFC3339))
		}
	}
	a, err := s.alarms.Shelve(ctx, req.GetDevice(), req.GetChannel(), until, who(ctx, req.GetWho()), req.GetComment())
	if err != nil {
		return nil, err
	}
	return &pb.ShelveResponse{Alarm: alarmToProto(&a)}, nil
}

func (s *alarmService) getAlarmLimits(ctx context.Context, req *pb.GetAlarmLimitsRequest) (*pb.GetAlarmLimitsResponse, error) {
	if err := requireChannel(req.GetDevice(), req.GetChannel()); err != nil {
		return nil, err
	}
	a, err := s.alarms.Get(ctx, req.GetDevice(), req.GetChannel())
	if err != nil {
		return nil, err
	}
	return &pb.GetAlarmLimitsResponse{Alarm: alarmToProto(&a)}, nil
}

func (s *alarmService) setAlarmLimits(ctx context.Context, req *pb.SetAlarmLimitsRequest) (*pb.SetAlarmLimitsResponse, error) {
	if err := requireChannel(req.GetDevice(), req.GetChannel()); err != nil {
		return nil, err
	}
	l, err := limitsFromProto("limits", req.GetLimits())
	if err != nil {
		return nil, err
	}
	if err := s.requireKnownChannel(ctx, req.GetDevice(), req.GetChannel()); err != nil {
		return nil, err
	}
	a, err := s.alarms.SetLimits(ctx, req.GetDevice(), req.GetChannel(), l, who(ctx, req.GetWho()), req.GetComment())
	if err != nil {
		return nil, err
	}
	return &pb.SetAlarmLimitsResponse{Alarm: alarmToProto(&a)}, nil
}

// requireKnownChannel refuses limits for a channel that has no alarm and does
// not exist: setting limits must not create alarms for made-up names. A channel
// with an alarm (one that published, such as the server's own channels) or a
// configured channel of a configured device passes.
func (s *alarmService) requireKnownChannel(ctx context.Context, device, channel string) error {
	_, err := s.alarms.Get(ctx, device, channel)
	if !errors.Is(err, alarm.ErrNotFound) {
		return err
	}
	info, err := s.devices.Get(device)
	if err != nil {
		return err
	}
	for _, ch := range info.Channels {
		if ch.Name == channel {
			return nil
		}
	}
	return &errNoChannel{device: device, channel: channel}
}
