package cluster

import (
	"errors"
	"fmt"
	"path"
	"time"
)

// Timing sets the lease protocol's clocks. The zero value takes the defaults.
//
// The safety argument (two nodes never poll one device) rests on these
// margins; see the package documentation, "Fencing".
type Timing struct {
	// LeaseTTL is how long a lease lives after its last renewal reached the
	// server: the key-value bucket's max age. Default 3s.
	LeaseTTL time.Duration
	// RenewEvery is the time between renewal rounds. Default LeaseTTL/4.
	RenewEvery time.Duration
	// StopMargin is how long before its lease can expire a node that could not
	// renew it must have stopped the device: the node fences at (send time of
	// the last confirmed renewal) + LeaseTTL - StopMargin. It covers the time
	// StopDevice takes plus clock-rate differences. Default LeaseTTL/3.
	StopMargin time.Duration
	// ClaimGrace is how long a free device waits for the node placement chose
	// before any node that may own it claims it. Default RenewEvery.
	ClaimGrace time.Duration
	// RequestTimeout bounds each key-value operation. Default RenewEvery/2.
	RequestTimeout time.Duration
}

// WithDefaults fills in the zero fields.
func (t Timing) WithDefaults() Timing {
	if t.LeaseTTL <= 0 {
		t.LeaseTTL = 3 * time.Second
	}
	if t.RenewEvery <= 0 {
		t.RenewEvery = t.LeaseTTL / 4
	}
	if t.StopMargin <= 0 {
		t.StopMargin = t.LeaseTTL / 3
	}
	if t.ClaimGrace <= 0 {
		t.ClaimGrace = t.RenewEvery
	}
	if t.RequestTimeout <= 0 {
		t.RequestTimeout = t.RenewEvery / 2
	}
	return t
}

// Validate checks that the margins leave room for the protocol: at least two
// renewal rounds before a node fences itself, and a request can time out
// before the next round starts.
func (t Timing) Validate() error {
	var errs []error
	if t.LeaseTTL < 200*time.Millisecond {
		errs = append(errs, fmt.Errorf("lease_ttl: must be at least 200ms, got %s", t.LeaseTTL))
	}
	if t.StopMargin >= t.LeaseTTL {
		errs = append(errs, fmt.Errorf("stop_margin: must be below lease_ttl %s, got %s", t.LeaseTTL, t.StopMargin))
	} else if 2*t.RenewEvery > t.LeaseTTL-t.StopMargin {
		errs = append(errs, fmt.Errorf("renew_every: two rounds (%s) must fit in lease_ttl - stop_margin (%s)", 2*t.RenewEvery, t.LeaseTTL-t.StopMargin))
	}
	if t.RequestTimeout > t.RenewEvery {
		errs = append(errs, fmt.Errorf("request_timeout: must not exceed renew_every %s, got %s", t.RenewEvery, t.RequestTimeout))
	}
	return errors.Join(errs...)
}

// Selector says which devices a node may own: a device matches when each
// listed tag is present on it and its value matches the glob (path.Match).
type Selector map[string]string

// Matches reports whether a device with tags matches the selector.
func (s Selector) Matches(tags map[string]string) bool {
	for k, glob := range s {
		v, ok := tags[k]
		if !ok {
			return false
		}
		if m, err := path.Match(glob, v); err != nil || !m {
			return false
		}
	}
	return true
}

// MayOwn reports whether a node whose selectors are sel may own a device with
// tags: no selectors means every device; otherwise any one must match.
func MayOwn(sel []Selector, tags map[string]string) bool {
	if len(sel) == 0 {
		return true
	}
	for _, s := range sel {
		if s.Matches(tags) {
			return true
		}
	}
	return false
}

// DeviceRef is what placement knows of a device: its name and tags.
type DeviceRef struct {
	Name string
	Tags map[string]string
}

// Names of the NATS resources of one cluster, derived from a prefix so that
// several clusters (or tests) can share one NATS server.
type Names struct {
	Prefix string
}

func (n Names) prefix() string {
	if n.Prefix == "" {
		return "switchyard"
	}
	return n.Prefix
}

// LeaseBucket is the key-value bucket of device leases.
func (n Names) LeaseBucket() string { return n.prefix() + "-leases" }

// NodeBucket is the key-value bucket of node registrations.
func (n Names) NodeBucket() string { return n.prefix() + "-nodes" }

// AlarmBucket is the key-value bucket of alarm state.
func (n Names) AlarmBucket() string { return n.prefix() + "-alarms" }

// Stream is the JetStream stream of telemetry and device states.
func (n Names) Stream() string { return n.prefix() + "-telemetry" }

// SampleSubject is the subject of a device's sample batches.
func (n Names) SampleSubject(device string) string {
	return n.prefix() + ".s." + Token(device)
}

// StateSubject is the subject of a device's state changes.
func (n Names) StateSubject(device string) string {
	return n.prefix() + ".d." + Token(device)
}

// CommandSubject is where a device's owner answers commands.
func (n Names) CommandSubject(device string) string {
	return n.prefix() + ".cmd." + Token(device)
}

// AbortSubject is where a device's owner answers aborts.
func (n Names) AbortSubject(device string) string {
	return n.prefix() + ".abort." + Token(device)
}

// AlarmSubject is where a device's owner answers alarm actions.
func (n Names) AlarmSubject(device string) string {
	return n.prefix() + ".alarm." + Token(device)
}

// AlarmEventSubject is the stream subject of a device's alarm transitions.
func (n Names) AlarmEventSubject(device string) string {
	return n.prefix() + ".a." + Token(device)
}

// Archiver is the durable consumer that archives samples.
func (n Names) Archiver() string { return n.prefix() + "-archiver" }
