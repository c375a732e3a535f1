package alarm

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// transitionColumns are the columns of the transitions table scanTransition
// reads, in order.
var transitionColumns = []string{"ts", "device", "channel", "alarm_group", "event", "cond", "severity", "latched",
	"acked", "reading", "quality", "message", "who", "comment", "hihi", "high", "low", "lolo", "hysteresis",
	"delay_ms", "limits"}

// scanTransition reads a row of transitionColumns.
func scanTransition(row []any) (transitionRow, error) {
	c := ingest.Cells{Row: row}
	r := transitionRow{
		TimeNs: c.Time(0), Device: c.String(1), Channel: c.String(2), Group: c.String(3), Event: c.String(4),
		Cond: c.String(5), Severity: c.String(6), Latched: c.String(7), Acked: c.Bool(8), Quality: c.String(10),
		Message: c.String(11), Who: c.String(12), Comment: c.String(13), DelayMs: c.Int(19), Limits: c.String(20),
	}
	opt := func(i int) *float64 {
		if v, ok := c.Float(i); ok {
			return &v
		}
		return nil
	}
	r.Reading, r.HiHi, r.High, r.Low, r.LoLo = opt(9), opt(14), opt(15), opt(16), opt(17)
	if v, ok := c.Float(18); ok {
		r.Hysteresis = v
	}
	return r, c.Err()
}

// History reads archived transitions back (WatchAlarms with since_ns). Build it
// with NewHistory. It is safe for concurrent use.
type History struct {
	log *ingest.Log[transitionRow]
}

// NewHistory returns the history of the transitions a archives (into its table
// at QuestDB's HTTP address).
func NewHistory(httpAddr string, a *Archive) (*History, error) {
	l, err := ingest.NewLog(httpAddr, a.r.Writer)
	if err != nil {
		return nil, err
	}
	return &History{log: l}, nil
}

// Settle returns once every transition recorded before the call is archived
// and visible to queries (the engine records a transition before any watch
// sees it). It waits through QuestDB outages, until ctx ends.
func (h *History) Settle(ctx context.Context) error { return h.log.Settle(ctx) }

// Replay hands every archived transition from fromNs on to each, in the order
// they happened (an Engine's transition times are unique and increasing), as
// ingest.Log.Replay does (retrying outages). A transition holds what the
// archive records; see TransitionOf.
func (h *History) Replay(ctx context.Context, fromNs int64, opts ingest.ReplayOptions, each func([]Transition) error) error {
	var out []Transition
	return h.log.Replay(ctx, fromNs, opts, func(rows []transitionRow) error {
		out = out[:0]
		for i := range rows {
			t, err := transitionOf(&rows[i])
			if err != nil {
				return fmt.Errorf("alarm archive: %s/%s at %s: %w", rows[i].Device, rows[i].Channel,
					time.Unix(0, rows[i].TimeNs).UTC().Format(time.RFC3339Nano), err)
			}
			out = append(out, t)
		}
		return each(out)
	})
}

// transitionOf is the transition an archived row records (the inverse of
// transitionRowOf): the alarm's device, channel, group, condition, severity,
// latched, acked, value, quality, message and limits (the thresholds' values,
// hysteresis and delay exact; their severities, delay_samples, stale_after,
// setpoint and tolerance from the limits text, the tolerance to 6 digits; not
// ReadbackDelay); Since for RAISED, CHANGED and CLEARED, the ack's who,
// comment and time for ACKED and the shelf's who and comment for SHELVED (the
// transition's). The rest of the alarm the archive does not hold.
func transitionOf(r *transitionRow) (Transition, error) {
	t := Transition{Time: time.Unix(0, r.TimeNs), Who: r.Who, Comment: r.Comment}
	var err error
	if t.Event, err = parseName[Event](eventNames[:], r.Event, "event"); err != nil {
		return t, err
	}
	a := &t.Alarm
	a.Device, a.Channel, a.Group, a.Acked, a.Message = r.Device, r.Channel, r.Group, r.Acked, r.Message
	if a.Condition, err = parseName[Condition](conditionNames[:], r.Cond, "cond"); err != nil {
		return t, err
	}
	if a.Severity, err = parseName[Severity](severityNames[:], r.Severity, "severity"); err != nil {
		return t, err
	}
	if a.Latched, err = parseName[Severity](severityNames[:], r.Latched, "latched"); err != nil {
		return t, err
	}
	q, ok := parseQuality(r.Quality)
	if !ok {
		return t, fmt.Errorf("quality %q is not one Switchyard writes", r.Quality)
	}
	a.Quality = q
	if r.Reading != nil {
		a.Value, a.HasValue = *r.Reading, true
	}
	a.Limits = limitsOf(r)
	switch t.Event {
	case Raised, Changed, Cleared:
		a.Since = t.Time
	case Acked:
		a.AckedBy, a.AckComment, a.AckedAt = t.Who, t.Comment, t.Time
	case Shelved:
		a.ShelvedBy, a.ShelveComment = t.Who, t.Comment
	}
	return t, nil
}

// parseName is the inverse of the String methods of Event, Condition and
// Severity.
func parseName[E ~uint8](names []string, s, field string) (E, error) {
	for i, n := range names {
		if n == s && n != "" {
			return E(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q is not one Switchyard writes", field, s)
}

func parseQuality(s string) (telemetry.Quality, bool) {
	for q := telemetry.Quality(0); q < 32; q++ {
		if q.String() == s {
			return q, true
		}
	}
	return 0, false
}

// limitsOf rebuilds the limits of a row from its columns and the text of
// Limits.String.
func limitsOf(r *transitionRow) Limits {
	l := Limits{Hysteresis: r.Hysteresis, Delay: time.Duration(r.DelayMs) * time.Millisecond}
	for _, f := range strings.Fields(r.Limits) {
		name, val, _ := strings.Cut(f, "=")
		num, sev := val, NoAlarm
		if open := strings.IndexByte(val, '('); open >= 0 && strings.HasSuffix(val, ")") {
			num = val[:open]
			sev, _ = ParseSeverity(val[open+1 : len(val)-1])
		}
		threshold := func(v *float64) Threshold {
			if v == nil {
				return Threshold{}
			}
			return Threshold{Value: *v, Severity: sev}
		}
		switch name {
		case "hihi":
			l.HiHi = threshold(r.HiHi)
		case "high":
			l.High = threshold(r.High)
		case "low":
			l.Low = threshold(r.Low)
		case "lolo":
			l.LoLo = threshold(r.LoLo)
		case "delay_samples":
			l.DelaySamples, _ = strconv.Atoi(num)
		case "stale_after":
			l.StaleAfter, _ = time.ParseDuration(num)
		case "setpoint":
			l.Setpoint = num
		case "tolerance":
			l.Tolerance, _ = strconv.ParseFloat(num, 64)
			if sev != Minor {
				l.ReadbackSeverity = sev
			}
		}
	}
	return l
}
