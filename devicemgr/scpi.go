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
	query  string // joined: the units' queries joined by ';', built once

	// Reused from one poll to the next (the Publisher keeps nothing).
	parts []string
	batch []telemetry.Sample
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
	for _, g := range groups {
		qs := make([]string, len(g.units))
		for i, u := range g.units {
			qs[i] = u.query
		}
		g.query = strings.Join(qs, ";")
		g.batch = make([]telemetry.Sample, 0, len(g.chans))
	}
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

func (d *Device) runInit(lc *lineConn) error {
	for i, line := range d.spec.Init {
		var err error
		switch {
		case strings.HasSuffix(line, "?"):
			_, err = lc.query(line, d.spec.ReplyTimeout)
		case d.spec.WriteConfirm != "":
			// Confirmed like a command, so the device is CONNECTED only once
			// the instrument has executed its init.
			_, err = lc.query(line+";"+d.spec.WriteConfirm, d.spec.ReplyTimeout)
		default:
			err = lc.writeLine(line, d.spec.ReplyTimeout)
		}
		if err != nil {
			return fmt.Errorf("init[%d] %q: %w", i, line, err)
		}
	}
	return nil
}

// poll reads one group and publishes its samples in one batch. A timeout or
// broken connection ends the session (after publishing what earlier queries of
// the cycle read); a reply that does not parse publishes PARSE_ERROR samples,
// keeping the reply, and keeps the connection.
func (d *Device) poll(lc *lineConn, g *pollGroup) error {
	d.pollCtr.Inc()
	g.batch = g.batch[:0]
	defer func() {
		if len(g.batch) > 0 {
			d.m.pub.Publish(g.batch...)
		}
		clear(g.batch) // drop the reply strings until the next poll
	}()
	if !g.joined {
		for _, u := range g.units {
			reply, err := lc.query(u.query, d.spec.ReplyTimeout)
			if err != nil {
				return err
			}
			g.batch = d.appendUnit(g.batch, u, reply, d.m.opts.Now().UnixNano())
		}
		return nil
	}
	reply, err := lc.query(g.query, d.spec.ReplyTimeout)
	if err != nil {
		return err
	}
	ts := d.m.opts.Now().UnixNano() // one reply, one arrival time for all its samples
	g.parts = splitReplies(g.parts[:0], reply)
	if len(g.parts) != len(g.units) {
		reason := clip(fmt.Sprintf("want %d replies separated by ';', got reply %q", len(g.units), clip(reply)))
		for _, ch := range g.chans {
			g.batch = append(g.batch, telemetry.Sample{
				Device: d.spec.Name, Channel: ch.Name, TimeNs: ts,
				Seq: d.seq.next(ch.Name), Quality: telemetry.ParseError, Err: reason,
			})
		}
		return nil
	}
	for i, u := range g.units {
		g.batch = d.appendUnit(g.batch, u, g.parts[i], ts)
	}
	clear(g.parts)
	return nil
}

// splitReplies appends the ';'-separated parts of reply to parts (like
// strings.Split, without allocating a fresh slice per poll).
func splitReplies(parts []string, reply string) []string {
	for {
		before, after, found := strings.Cut(reply, ";")
		parts = append(parts, before)
		if !found {
			return parts
		}
		reply = after
	}
}

// appendUnit parses one query's reply into its channels' samples stamped ts,
// appended to batch.
func (d *Device) appendUnit(batch []telemetry.Sample, u *pollUnit, reply string, ts int64) []telemetry.Sample {
	var vals ReplyValues
	var ferr error
	if u.format != nil {
		vals, ferr = u.format.Match(reply)
	}
	for _, ch := range u.chans {
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
		batch = append(batch, s)
	}
	return batch
}
