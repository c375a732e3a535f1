package server

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// Limits and defaults of request fields.
const (
	defaultBatchWindow = 50 * time.Millisecond
	defaultMaxBatch    = 1000
	maxMaxBatch        = 10000
	maxBatchWindowMs   = 60_000
	minHeartbeatMs     = 100
	minMaxRateHz       = 0.001
)

// errField returns a validation error for field.
func errField(field, format string, args ...any) error {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// globs is a compiled list of path.Match patterns; an empty list matches everything.
type globs []string

// compileGlobs checks every pattern once, so matching later cannot fail.
func compileGlobs(field string, patterns []string) (globs, error) {
	for i, p := range patterns {
		if p == "" {
			return nil, errField(field+"["+strconv.Itoa(i)+"]", "empty pattern")
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, errField(field+"["+strconv.Itoa(i)+"]", "bad glob pattern %q: %v", p, err)
		}
	}
	return globs(patterns), nil
}

// match reports whether name matches any pattern (or the list is empty).
func (g globs) match(name string) bool {
	if len(g) == 0 {
		return true
	}
	for _, p := range g {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// compileSelector validates a Selector and returns a sample matcher, nil when the
// selector selects everything (the hub's cheapest case). tags gives a device's
// tags as they are now, for tag selectors.
func compileSelector(field string, sel *pb.Selector, tags func(device string) (map[string]string, bool)) (func(*telemetry.Sample) bool, error) {
	match, err := compileNames(field, sel)
	if err != nil || len(sel.GetTags()) == 0 {
		return match, err
	}
	tagged := taggedDevice(sel.GetTags(), tags)
	return func(s *telemetry.Sample) bool {
		return tagged(s.Device) && (match == nil || match(s))
	}, nil
}

// taggedDevice returns a matcher of the devices that carry every tag in want.
// It asks tags (Devices.Tags) for each device's tags as they are now, so a
// device added or retagged by a reload is selected without resubscribing.
func taggedDevice(want map[string]string, tags func(device string) (map[string]string, bool)) func(device string) bool {
	return func(device string) bool {
		have, ok := tags(device)
		if !ok {
			return false
		}
		for k, v := range want {
			if got, has := have[k]; !has || got != v {
				return false
			}
		}
		return true
	}
}

// compileNames compiles the device and channel globs of a Selector.
func compileNames(field string, sel *pb.Selector) (func(*telemetry.Sample) bool, error) {
	devs, err := compileGlobs(field+".devices", sel.GetDevices())
	if err != nil {
		return nil, err
	}
	chans, err := compileGlobs(field+".channels", sel.GetChannels())
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 && len(chans) == 0 {
		return nil, nil
	}
	return func(s *telemetry.Sample) bool {
		return devs.match(s.Device) && chans.match(s.Channel)
	}, nil
}

// subscribeParams are the validated parameters of a SubscribeRequest.
type subscribeParams struct {
	match     func(*telemetry.Sample) bool
	matchDev  func(name string) bool // for device states
	window    time.Duration
	maxBatch  int
	filter    telemetry.FilterOptions
	initial   bool
	heartbeat time.Duration
	states    bool
}

func validateSubscribe(req *pb.SubscribeRequest, tags func(device string) (map[string]string, bool)) (subscribeParams, error) {
	match, err := compileSelector("selector", req.GetSelector(), tags)
	if err != nil {
		return subscribeParams{}, err
	}
	p := subscribeParams{match: match, window: defaultBatchWindow, maxBatch: defaultMaxBatch}
	devGlobs, _ := compileGlobs("selector.devices", req.GetSelector().GetDevices())
	tagged := func(string) bool { return true }
	if want := req.GetSelector().GetTags(); len(want) > 0 {
		tagged = taggedDevice(want, tags)
	}
	p.matchDev = func(name string) bool { return devGlobs.match(name) && tagged(name) }
	for _, f := range []struct {
		name string
		v    float64
	}{{"deadband_abs", req.GetDeadbandAbs()}, {"deadband_rel", req.GetDeadbandRel()}, {"max_rate_hz", req.GetMaxRateHz()}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return subscribeParams{}, errField(f.name, "must be a finite number >= 0, got %v", f.v)
		}
	}
	if r := req.GetMaxRateHz(); r > 0 && r < minMaxRateHz {
		return subscribeParams{}, errField("max_rate_hz", "must be 0 (unlimited) or >= %v, got %v", minMaxRateHz, r)
	}
	p.filter = telemetry.FilterOptions{DeadbandAbs: req.GetDeadbandAbs(), DeadbandRel: req.GetDeadbandRel(), MaxRate: req.GetMaxRateHz()}
	if ms := req.GetHeartbeatMs(); ms > 0 && (ms < minHeartbeatMs || ms > maxBatchWindowMs) {
		return subscribeParams{}, errField("heartbeat_ms", "must be 0 (none) or between %d and %d, got %d", minHeartbeatMs, maxBatchWindowMs, ms)
	} else {
		p.heartbeat = time.Duration(ms) * time.Millisecond
	}
	p.initial, p.states = req.GetInitialValues(), req.GetDeviceStates()
	if ms := req.GetBatchWindowMs(); ms > maxBatchWindowMs {
		return subscribeParams{}, errField("batch_window_ms", "must be <= %d, got %d", maxBatchWindowMs, ms)
	} else if ms > 0 {
		p.window = time.Duration(ms) * time.Millisecond
	}
	if n := req.GetMaxBatch(); n > maxMaxBatch {
		return subscribeParams{}, errField("max_batch", "must be <= %d, got %d", maxMaxBatch, n)
	} else if n > 0 {
		p.maxBatch = int(n)
	}
	return p, nil
}

// validateTimeout checks an optional non-negative duration field.
func validateTimeout(field string, d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return 0, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, errField(field, "invalid duration: %v", err)
	}
	v := d.AsDuration()
	if v < 0 {
		return 0, errField(field, "must be >= 0, got %s", v)
	}
	return v, nil
}
