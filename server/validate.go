package server

import (
	"fmt"
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
// selector selects everything (the hub's cheapest case).
func compileSelector(field string, sel *pb.Selector) (func(*telemetry.Sample) bool, error) {
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

// subscribeParams are the validated batching parameters of a SubscribeRequest.
type subscribeParams struct {
	match    func(*telemetry.Sample) bool
	window   time.Duration
	maxBatch int
}

func validateSubscribe(req *pb.SubscribeRequest) (subscribeParams, error) {
	match, err := compileSelector("selector", req.GetSelector())
	if err != nil {
		return subscribeParams{}, err
	}
	p := subscribeParams{match: match, window: defaultBatchWindow, maxBatch: defaultMaxBatch}
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
