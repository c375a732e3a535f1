package devicemgr

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// pollUnit is one query of a poll cycle and the channels its reply feeds:
// channels with the same query, reply format and period share one query.
type pollUnit struct {
	query  string
	format *ReplyFormat // nil: the whole reply is the one channel's value
	chans  []*ChannelSpec
}

// pollGroup is the channels of one device that share a period; they are read in
// one cycle. Their queries are joined by ';' (SCPI message units) into one round
// trip and the reply is split the same way, unless a reply format itself holds a
// ';': then every query of the group gets its own round trip.
type pollGroup struct {
	period time.Duration
	units  []*pollUnit
	chans  []*ChannelSpec
	joined bool
	next   time.Time
}

func (d *Device) pollGroups() []*pollGroup {
	byPeriod := map[time.Duration]*pollGroup{}
	var groups []*pollGroup
	for i := range d.spec.Channels {
		ch := &d.spec.Channels[i]
		g, ok := byPeriod[ch.Period]
		if !ok {
			g = &pollGroup{period: ch.Period, joined: true}
			byPeriod[ch.Period] = g
			groups = append(groups, g)
		}
		g.chans = append(g.chans, ch)
		var unit *pollUnit
		for _, u := range g.units {
			if ch.Reply != "" && u.query == ch.Query && u.format != nil && u.format.String() == ch.Reply {
				unit = u
			}
		}
		if unit == nil {
			unit = &pollUnit{query: ch.Query}
			if ch.Reply != "" {
				unit.format, _ = CompileReplyFormat(ch.Reply) // checked by Validate
				if strings.Contains(ch.Reply, ";") {
					g.joined = false
				}
			}
			g.units = append(g.units, unit)
		}
		unit.chans = append(unit.chans, ch)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].period < groups[j].period })
	return groups
}

func (d *Device) runSCPI(ctx context.Context, lc *lineConn) error {
	identity := ""
	if d.spec.Identify != "" {
		id, err := lc.query(d.spec.Identify, d.spec.ReplyTimeout)
		if err != nil {
			return fmt.Errorf("identify with %q: %w", d.spec.Identify, err)
		}
		identity = id
	}
	if err := d.runInit(lc); err != nil {
		return err
	}
	d.setConnected(identity)
	d.m.opts.Logger.Info("device connected", "device", d.spec.Name, "identity", identity)

	return d.schedule(ctx, d.pollGroups(),
		func(g *pollGroup) error { return d.poll(lc, g) },
		func(req *request) error { return d.execute(lc, req, true) })
}

// schedule runs the poll groups at their periods and the queued commands in
// between, one at a time, until ctx ends or poll or exec returns an error (which
// ends the session). A cycle that overruns its period is counted and the
// missed slots are skipped, never queued up.
func (d *Device) schedule(ctx context.Context, groups []*pollGroup, poll func(*pollGroup) error, exec func(*request) error) error {
	now := time.Now()
	for _, g := range groups {
		g.next = now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	if len(groups) == 0 {
		timer.Stop()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-d.cmds:
			if err := exec(req); err != nil {
				return err
			}
		case <-timer.C:
			now := time.Now()
			for _, g := range groups {
				if now.Before(g.next) {
					continue
				}
				if err := poll(g); err != nil {
					return err
				}
				g.next = g.next.Add(g.period)
				if after := time.Now(); !g.next.After(after) {
					d.m.metrics.overruns.WithLabelValues(d.spec.Name).Inc()
					d.overruns.Add(1)
					missed := after.Sub(g.next)/g.period + 1
					g.next = g.next.Add(missed * g.period)
				}
			}
			earliest := groups[0].next
			for _, g := range groups[1:] {
				if g.next.Before(earliest) {
					earliest = g.next
				}
			}
			timer.Reset(time.Until(earliest))
		}
	}
}

func (d *Device) runInit(lc *lineConn) error {
	for i, line := range d.spec.Init {
		var err error
		if strings.HasSuffix(line, "?") {
			_, err = lc.query(line, d.spec.ReplyTimeout)
		} else {
			err = lc.writeLine(line, d.spec.ReplyTimeout)
		}
		if err != nil {
			return fmt.Errorf("init[%d] %q: %w", i, line, err)
		}
	}
	return nil
}

// poll reads one group. A timeout or broken connection ends the session; a reply
// that does not parse publishes PARSE_ERROR samples, keeping the reply, and keeps
// the connection.
func (d *Device) poll(lc *lineConn, g *pollGroup) error {
	d.m.metrics.polls.WithLabelValues(d.spec.Name).Inc()
	if !g.joined {
		for _, u := range g.units {
			reply, err := lc.query(u.query, d.spec.ReplyTimeout)
			if err != nil {
				return err
			}
			d.publishUnit(u, reply)
		}
		return nil
	}
	qs := make([]string, len(g.units))
	for i, u := range g.units {
		qs[i] = u.query
	}
	reply, err := lc.query(strings.Join(qs, ";"), d.spec.ReplyTimeout)
	if err != nil {
		return err
	}
	parts := strings.Split(reply, ";")
	if len(parts) != len(g.units) {
		d.publishBadFor(g.chans, telemetry.ParseError,
			fmt.Sprintf("want %d replies separated by ';', got reply %q", len(g.units), clip(reply)))
		return nil
	}
	for i, u := range g.units {
		d.publishUnit(u, parts[i])
	}
	return nil
}

// publishUnit parses one query's reply into its channels' samples.
func (d *Device) publishUnit(u *pollUnit, reply string) {
	ts := d.m.opts.Now().UnixNano()
	var vals ReplyValues
	var ferr error
	if u.format != nil {
		vals, ferr = u.format.Match(reply)
	}
	batch := make([]telemetry.Sample, len(u.chans))
	for i, ch := range u.chans {
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		text, err := reply, ferr
		if u.format != nil && ferr == nil {
			var ok bool
			if u.format.IsRegexp() {
				text, ok = vals.Name(ch.Key)
			} else {
				text, ok = vals.Index(ch.Index)
			}
			if !ok {
				err = fmt.Errorf("reply %q has no value for channel %s", clip(reply), ch.Name)
			}
		}
		var v telemetry.Value
		if err == nil {
			v, err = parseValue(ch.Type, text)
			if err != nil {
				err = fmt.Errorf("%v in reply %q", err, clip(reply))
			}
		}
		if err != nil {
			s.Quality = telemetry.ParseError
			s.Err = clip(err.Error())
		} else {
			s.Value = v
		}
		batch[i] = s
	}
	d.m.pub.Publish(batch...)
}
