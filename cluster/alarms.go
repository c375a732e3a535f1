package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// AlarmState is the part of a channel's alarm that must survive its owner:
// what operators did and what the alarm latched. The owner's alarm engine
// evaluates conditions; it saves this after every change and loads it when
// it takes a device over, so an acknowledgement or a shelf outlives the node
// that took it.
type AlarmState struct {
	Device  string `json:"device"`
	Channel string `json:"channel"`
	// Condition and Severity hold now (names, "HIGH", "MINOR"), since SinceNs:
	// the next owner goes on from them instead of raising the alarm again.
	Condition string `json:"condition,omitempty"`
	Severity  string `json:"severity,omitempty"`
	SinceNs   int64  `json:"since_ns,omitempty"`
	// Latched is the highest severity since the last acknowledgement, by name
	// ("MAJOR"); empty for none.
	Latched string `json:"latched,omitempty"`
	Acked   bool   `json:"acked,omitempty"`

	AckedBy    string `json:"acked_by,omitempty"`
	AckComment string `json:"ack_comment,omitempty"`
	AckedAtNs  int64  `json:"acked_at_ns,omitempty"`

	ShelvedUntilNs int64  `json:"shelved_until_ns,omitempty"`
	ShelvedBy      string `json:"shelved_by,omitempty"`
	ShelveComment  string `json:"shelve_comment,omitempty"`

	// Node that saved it, and when.
	Node      string `json:"node,omitempty"`
	UpdatedNs int64  `json:"updated_ns,omitempty"`

	// Alarm is the whole alarm as its owner last saw it (value, message,
	// limits too), in the wiring's wire form, for any node to list.
	Alarm []byte `json:"alarm,omitempty"`
}

// AlarmStore keeps alarm state in the cluster's alarm bucket, one key per
// channel ("<device token>.<channel token>").
type AlarmStore struct{ kv jetstream.KeyValue }

// Alarms returns the cluster's alarm store.
func (c *Cluster) Alarms() *AlarmStore { return &AlarmStore{kv: c.alarms} }

func alarmKey(device, channel string) string { return Token(device) + "." + Token(channel) }

// Save stores a channel's alarm state.
func (s *AlarmStore) Save(ctx context.Context, st AlarmState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if _, err := s.kv.Put(ctx, alarmKey(st.Device, st.Channel), data); err != nil {
		return fmt.Errorf("save alarm state of %s/%s: %w", st.Device, st.Channel, err)
	}
	return nil
}

// Load returns the saved alarm state of every channel of a device, sorted by channel.
func (s *AlarmStore) Load(ctx context.Context, device string) ([]AlarmState, error) {
	return s.load(ctx, Token(device)+".*")
}

// All returns the saved alarm state of every channel of every device,
// sorted by device and channel.
func (s *AlarmStore) All(ctx context.Context) ([]AlarmState, error) {
	out, err := s.load(ctx, ">")
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Channel < out[j].Channel
	})
	return out, err
}

func (s *AlarmStore) load(ctx context.Context, filter string) ([]AlarmState, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{filter}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	var out []AlarmState
	err = initial(ctx, w, func(e jetstream.KeyValueEntry) error {
		var st AlarmState
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return fmt.Errorf("alarm state %s: %w", e.Key(), err)
		}
		out = append(out, st)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out, nil
}

// PublishAlarm publishes one of the device's alarm transitions (in the
// wiring's wire form) for every node's WatchAlarms; the owner publishes them
// in the order they happened.
func (p *Publisher) PublishAlarm(ctx context.Context, device string, transition []byte) error {
	pctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	_, err := p.c.JS.Publish(pctx, p.c.Names.AlarmEventSubject(device), transition)
	return err
}

// WatchAlarms calls fn with every alarm transition owners publish from now
// on (device, and the transition in the wiring's wire form), in the order
// each owner published them, until ctx ends or fn fails.
func (r *Reader) WatchAlarms(ctx context.Context, fn func(device string, transition []byte) error) error {
	prefix := r.c.Names.prefix() + ".a."
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, FilterSubjects: []string{prefix + ">"}}
	return r.consume(ctx, cfg, 0, func(m jetstream.Msg) error {
		dev, err := ParseToken(strings.TrimPrefix(m.Subject(), prefix))
		if err != nil {
			return nil
		}
		return fn(dev, m.Data())
	})
}
