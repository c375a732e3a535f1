package devicemgr

import (
	"context"
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/telemetry"
)

// runLines reads lines the device pushes by itself. Each line is space-separated
// key=value pairs; a channel takes the value of its Key. A line that is not
// key=value pairs publishes PARSE_ERROR for every channel; a channel whose key is
// missing from a line is not published for that line. Silence longer than
// IdleTimeout ends the session with TIMEOUT.
func (d *Device) runLines(ctx context.Context, lc *lineConn) error {
	if err := d.runInit(lc); err != nil {
		return err
	}
	d.setConnected(d.spec.Identify)
	d.m.opts.Logger.Info("device connected", "device", d.spec.Name)

	type lineOrErr struct {
		line string
		err  error
	}
	lines := make(chan lineOrErr, 64)
	done := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		for {
			l, err := lc.readLine(d.spec.IdleTimeout)
			select {
			case lines <- lineOrErr{l, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(done)
		lc.c.Close() // unblocks the reader
		<-readerDone
	}()

	byKey := make(map[string]*ChannelSpec, len(d.spec.Channels))
	for i := range d.spec.Channels {
		byKey[d.spec.Channels[i].Key] = &d.spec.Channels[i]
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case req := <-d.cmds:
			// Pushing devices take commands without a reply: their input is the
			// pushed stream, read by the reader goroutine.
			if err := d.execute(lc, req, false); err != nil {
				return err
			}
		case l := <-lines:
			if l.err != nil {
				return l.err
			}
			d.publishLine(l.line, byKey)
		}
	}
}

func (d *Device) publishLine(line string, byKey map[string]*ChannelSpec) {
	ts := d.m.opts.Now().UnixNano()
	fields := strings.Fields(line)
	batch := make([]telemetry.Sample, 0, len(d.spec.Channels))
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			d.publishBad(telemetry.ParseError, fmt.Sprintf("want key=value pairs, got line %q", clip(line)))
			return
		}
		ch, ok := byKey[k]
		if !ok {
			continue
		}
		s := telemetry.Sample{Device: d.spec.Name, Channel: ch.Name, TimeNs: ts, Seq: d.seq.next(ch.Name)}
		val, err := parseValue(ch.Type, v)
		if err != nil {
			s.Quality = telemetry.ParseError
			s.Err = fmt.Sprintf("key %s: %v", k, err)
		} else {
			s.Value = val
		}
		batch = append(batch, s)
	}
	if len(fields) == 0 {
		d.publishBad(telemetry.ParseError, "empty line")
		return
	}
	d.m.pub.Publish(batch...)
}
