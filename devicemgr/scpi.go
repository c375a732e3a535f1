package devicemgr

import (
	"context"
	"errors"
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

// joinable reports whether the unit's query may share a line with others: its
// reply can then be cut out of the joined reply at the ';'.
func (u *pollUnit) joinable() bool {
	return !strings.Contains(u.query, ";") && (u.format == nil || !strings.Contains(u.format.String(), ";"))
}

// pollLine is one round trip of a poll cycle: the queries of its units joined
// by ';' (SCPI message units), answered by one line whose ';'-separated parts
// go to the units in order; a single unit takes the whole reply.
type pollLine struct {
	query string
	units []*pollUnit
	chans []*ChannelSpec
}

// pollGroup is the channels of one device that share a period; they are read
// in one cycle of one or more lines: at most MaxJoin queries per line (units
// whose query or reply format holds a ';' get a line of their own).
type pollGroup struct {
	period time.Duration
	units  []*pollUnit
	chans  []*ChannelSpec
	lines  []*pollLine

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
			g = &pollGroup{period: ch.Period}
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
			}
			g.units = append(g.units, unit)
		}
		unit.chans = append(unit.chans, ch)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].period < groups[j].period })
	for _, g := range groups {
		var open *pollLine // the line still taking joinable units
		for _, u := range g.units {
			if !u.joinable() || d.spec.MaxJoin <= 1 {
				g.lines = append(g.lines, &pollLine{query: u.query, units: []*pollUnit{u}, chans: u.chans})
				continue
			}
			if open == nil || len(open.units) >= d.spec.MaxJoin {
				open = &pollLine{}
				g.lines = append(g.lines, open)
			}
			open.units = append(open.units, u)
			open.chans = append(open.chans, u.chans...)
		}
		for _, l := range g.lines {
			qs := make([]string, len(l.units))
			for i, u := range l.units {
				qs[i] = u.query
			}
			l.query = strings.Join(qs, ";")
		}
		g.batch = make([]telemetry.Sample, 0, len(g.chans))
	}
	return groups
}

func (d *Device) runSCPI(ctx context.Context, lc *lineConn) error {
	identity := ""
	if d.spec.Identify != "" {
		id, err := d.ask(lc, d.spec.Identify, d.spec.ReplyTimeout)
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
		func(req *request) error { return d.execute(lc, req) })
}

// runInit sends the init lines with the model's reply accounting: a query's
// reply is read and discarded, a write is acknowledged or confirmed like a
// command, so the device is CONNECTED only once the instrument has executed
// its init. An instrument's refusal fails the connection attempt.
func (d *Device) runInit(lc *lineConn) error {
	for i, line := range d.spec.Init {
		var err error
		if isQuery(line) {
			_, err = d.ask(lc, line, d.spec.ReplyTimeout)
		} else {
			err = d.tell(lc, line, d.spec.ReplyTimeout)
		}
		if err != nil {
			return fmt.Errorf("init[%d] %q: %w", i, line, err)
		}
	}
	return nil
}

// poll reads one group, line by line, and publishes its samples in one batch.
// A reply matching the model's error form gives the line's channels
// COMM_ERROR with the instrument's message and keeps the connection. A reply
// that does not fit (a value that does not parse, a wrong number of parts)
// publishes nothing of its line as GOOD: the device is out of step and the
// session ends, after publishing what earlier lines of the cycle read; so does
// a timeout or a broken connection.
func (d *Device) poll(lc *lineConn, g *pollGroup) error {
	d.pollCtr.Inc()
	g.batch = g.batch[:0]
	defer func() {
		if len(g.batch) > 0 {
			d.m.pub.Publish(g.batch...)
		}
		clear(g.batch) // drop the reply strings until the next poll
	}()
	for _, l := range g.lines {
		reply, err := d.ask(lc, l.query, d.spec.ReplyTimeout)
		ts := d.m.opts.Now().UnixNano() // one reply, one arrival time for all its samples
		if err != nil {
			// (Declared here, not above: errors.As makes it escape, and a
			// poll that succeeds should not allocate for it.)
			var ie *InstrumentError
			if !errors.As(err, &ie) {
				return err
			}
			g.batch = d.appendBad(g.batch, l.chans, ts, telemetry.CommError,
				fmt.Sprintf("the instrument answered %q to %q", clip(reply), clip(l.query)))
			continue
		}
		mark := len(g.batch)
		if err := d.parseLine(g, l, reply, ts); err != nil {
			g.batch = g.batch[:mark]
			return d.misfit(l, reply, err)
		}
		// The whole line fits: only now do its samples take sequence
		// numbers, so a line that does not fit leaves no gap.
		for i := mark; i < len(g.batch); i++ {
			g.batch[i].Seq = d.seq.next(g.batch[i].Channel)
		}
	}
	return nil
}

// parseLine appends the samples of one reply line, without sequence numbers,
// or says why the reply does not fit the line.
func (d *Device) parseLine(g *pollGroup, l *pollLine, reply string, ts int64) error {
	if len(l.units) == 1 {
		return d.appendUnit(&g.batch, l.units[0], reply, ts)
	}
	g.parts = splitReplies(g.parts[:0], reply)
	defer clear(g.parts)
	if len(g.parts) != len(l.units) {
		return fmt.Errorf("want %d replies separated by ';', got %d", len(l.units), len(g.parts))
	}
	for i, u := range l.units {
		if err := d.appendUnit(&g.batch, u, g.parts[i], ts); err != nil {
			return err
		}
	}
	return nil
}

// misfit is the out-of-step error for a poll reply that does not fit its
// line. None of the line's channels is published as GOOD: the session ends and
// every channel of the device is published with PARSE_ERROR quoting the reply.
func (d *Device) misfit(l *pollLine, reply string, why error) error {
	return outOfStep("reply %q to %q: %v", clip(reply), clip(l.query), why)
}

// appendBad appends a bad sample of each channel.
func (d *Device) appendBad(batch []telemetry.Sample, chans []*ChannelSpec, ts int64, q telemetry.Quality, reason string) []telemetry.Sample {
	reason = clip(reason)
	for _, ch := range chans {
		batch = append(batch, telemetry.Sample{
			Device: d.spec.Name, Channel: ch.Name, TimeNs: ts,
			Seq: d.seq.next(ch.Name), Quality: q, Err: reason,
		})
	}
	return batch
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
// appended to batch without sequence numbers. If the reply does not fit (the
// format does not match, or a channel's value does not parse as its type) it
// says why.
func (d *Device) appendUnit(batch *[]telemetry.Sample, u *pollUnit, reply string, ts int64) error {
	var vals ReplyValues
	if u.format != nil {
		var err error
		if vals, err = u.format.Match(reply); err != nil {
			return err
		}
	}
	for _, ch := range u.chans {
		text := reply
		if u.format != nil {
			var ok bool
			if u.format.IsRegexp() {
				text, ok = vals.Name(ch.Key)
			} else {
				text, ok = vals.Index(ch.Index)
			}
			if !ok {
				return fmt.Errorf("no value for channel %s", ch.Name)
			}
		}
		v, err := parseValue(ch.Type, text)
		if err != nil {
			return fmt.Errorf("channel %s: %v", ch.Name, err)
		}
		*batch = append(*batch, telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Value: v})
	}
	return nil
}
