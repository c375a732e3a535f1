package devicemgr

import (
	"context"
	"fmt"

	"github.com/switchyard/switchyard/telemetry"
)

// runLines reads lines the device pushes by itself, in the device's LineFormat;
// a channel takes the value of its Key. A line that does not parse publishes
// PARSE_ERROR for every channel, with the line; a channel whose key is missing
// from a line is not published for that line. Silence longer than
// IdleTimeout ends the session with TIMEOUT.
func (d *Device) runLines(ctx context.Context, lc *lineConn) error {
	// The device's input is its pushed stream: init lines are written, and
	// nothing is read back for them.
	for i, line := range d.spec.Init {
		if err := lc.writeLine(line, d.spec.ReplyTimeout); err != nil {
			return fmt.Errorf("init[%d] %q: %w", i, line, err)
		}
	}
	d.setConnected(d.spec.Identify)
	d.m.opts.Logger.Info("device connected", "device", d.spec.Name)

	byKey := make(map[string]*ChannelSpec, len(d.spec.Channels))
	for i := range d.spec.Channels {
		byKey[d.spec.Channels[i].Key] = &d.spec.Channels[i]
	}
	// The reader goroutine reads, parses and publishes every line itself (no
	// hand-off per line); this goroutine serves commands. It is the only
	// publisher of the session: it has ended before Serve publishes anything
	// after the session.
	readErr := make(chan error, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		lp := lineParser{format: d.spec.LineFormat}
		var batch []telemetry.Sample
		for {
			l, err := lc.readLine(d.spec.IdleTimeout)
			if err != nil {
				readErr <- err
				return
			}
			batch = d.publishLine(l, byKey, &lp, batch[:0])
		}
	}()
	defer func() {
		lc.c.Close() // unblocks the reader
		<-readerDone
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.mb.Notify():
			// Pushing devices take commands without a reply: their input is the
			// pushed stream, read by the reader goroutine.
			for {
				served, err := d.serveOne(func(req *request) error { return d.executePush(lc, req) })
				if err != nil {
					return err
				}
				if !served {
					break
				}
			}
		case err := <-readErr:
			return err
		}
	}
}

// publishLine parses one pushed line and publishes its samples, built in
// batch (returned for reuse: the publisher keeps nothing).
func (d *Device) publishLine(line string, byKey map[string]*ChannelSpec, lp *lineParser, batch []telemetry.Sample) []telemetry.Sample {
	fields, err := lp.parse(line)
	if err != nil {
		d.publishBad(telemetry.ParseError, err.Error())
		return batch
	}
	if fields == nil {
		return batch // a CSV header
	}
	ts := d.m.opts.Now().UnixNano()
	for _, f := range fields {
		ch, ok := byKey[f.key]
		if !ok {
			continue
		}
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		val, err := parseValue(ch.Type, f.value)
		if err != nil {
			s.Quality = telemetry.ParseError
			s.Err = clip(fmt.Sprintf("key %s: %v in line %q", f.key, err, clip(line)))
		} else {
			s.Value = val
		}
		batch = append(batch, s)
	}
	d.m.pub.Publish(batch...)
	clear(batch) // drop the strings until the next line
	return batch
}
