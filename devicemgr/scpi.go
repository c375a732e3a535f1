package devicemgr

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// pollGroup is the channels of one device that share a period; they are read in
// one round trip with their queries joined by ';' (SCPI message units), and the
// reply is split the same way.
type pollGroup struct {
	period time.Duration
	chans  []*ChannelSpec
	query  string
	next   time.Time
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
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].period < groups[j].period })
	for _, g := range groups {
		qs := make([]string, len(g.chans))
		for i, ch := range g.chans {
			qs[i] = ch.Query
		}
		g.query = strings.Join(qs, ";")
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

	groups := d.pollGroups()
	now := time.Now()
	for _, g := range groups {
		g.next = now
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-d.cmds:
			if err := d.execute(lc, req, true); err != nil {
				return err
			}
		case <-timer.C:
			now := time.Now()
			for _, g := range groups {
				if now.Before(g.next) {
					continue
				}
				if err := d.poll(lc, g); err != nil {
					return err
				}
				g.next = g.next.Add(g.period)
				if after := time.Now(); !g.next.After(after) {
					// Overrun: skip the missed slots instead of queueing them up.
					d.m.metrics.overruns.WithLabelValues(d.spec.Name).Inc()
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
// that does not parse publishes PARSE_ERROR samples and keeps the connection.
func (d *Device) poll(lc *lineConn, g *pollGroup) error {
	d.m.metrics.polls.WithLabelValues(d.spec.Name).Inc()
	reply, err := lc.query(g.query, d.spec.ReplyTimeout)
	if err != nil {
		return err
	}
	ts := d.m.opts.Now().UnixNano()
	parts := strings.Split(reply, ";")
	if len(parts) != len(g.chans) {
		d.publishBadFor(g.chans, telemetry.ParseError,
			fmt.Sprintf("want %d values separated by ';', got reply %q", len(g.chans), clip(reply)))
		return nil
	}
	batch := make([]telemetry.Sample, len(g.chans))
	for i, ch := range g.chans {
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		v, perr := parseValue(ch.Type, parts[i])
		if perr != nil {
			s.Quality = telemetry.ParseError
			s.Err = perr.Error()
		} else {
			s.Value = v
		}
		batch[i] = s
	}
	d.m.pub.Publish(batch...)
	return nil
}
