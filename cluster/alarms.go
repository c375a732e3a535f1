package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

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

// Clear removes a channel's alarm state (its alarm was removed).
func (s *AlarmStore) Clear(ctx context.Context, device, channel string) error {
	err := s.kv.Delete(ctx, alarmKey(device, channel))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// Load returns the saved alarm state of every channel of a device, sorted by channel.
func (s *AlarmStore) Load(ctx context.Context, device string) ([]AlarmState, error) {
	w, err := s.kv.WatchFiltered(ctx, []string{Token(device) + ".*"}, jetstream.IgnoreDeletes())
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
