package devicemgr

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// readbackInterval is the pause between read-backs while a write settles.
const readbackInterval = 50 * time.Millisecond

// awaitReadback reads a command's read-back channel until it is within the
// command's tolerance of the first argument (set ≠ read, like Tango's RDS) or
// the settle time (bounded by the caller's context) runs out, which fails the
// command with ErrNotSettled and the last value read; once it settles the
// caller gets rep, the command's own reply. It runs on the device's lane, so
// polls wait meanwhile. It returns an error only when the session must end.
func (d *Device) awaitReadback(req *request, rep Reply, spec *CommandSpec, args []string, read func(*ChannelSpec) (string, error)) error {
	want, err := strconv.ParseFloat(args[0], 64)
	if err != nil {
		req.reply(Reply{}, fmt.Errorf("command %s: read-back needs a numeric first argument, got %q: %w", spec.Name, args[0], ErrBadArgument))
		return nil
	}
	var ch *ChannelSpec
	for i := range d.spec.Channels {
		if d.spec.Channels[i].Name == spec.Readback {
			ch = &d.spec.Channels[i]
		}
	}
	deadline := time.Now().Add(spec.Settle)
	if dl, ok := req.ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	last := "nothing"
	for {
		text, err := read(ch)
		switch {
		case err == nil:
			v, perr := parseValue("float", text)
			if perr == nil && math.Abs(v.F-want) <= spec.Tolerance {
				req.reply(rep, nil)
				return nil
			}
			last = strconv.Quote(text)
		case errors.Is(err, errParse), errors.Is(err, ErrInstrument):
			last = err.Error()
		default:
			req.reply(Reply{}, fmt.Errorf("device %s, command %s: read-back of %s: %w", d.spec.Name, spec.Name, ch.Name, err))
			return err
		}
		if cause := context.Cause(req.ctx); errors.Is(cause, supervisor.ErrAborted) {
			req.reply(Reply{}, fmt.Errorf("device %s, command %s: written, then read-back of %s (last %s): %w", d.spec.Name, spec.Name, ch.Name, last, cause))
			return nil
		}
		if !time.Now().Add(readbackInterval).Before(deadline) || req.ctx.Err() != nil {
			req.reply(Reply{}, fmt.Errorf("device %s, command %s: %s read %s, want %g ± %g within %v: %w",
				d.spec.Name, spec.Name, ch.Name, last, want, spec.Tolerance, spec.Settle, ErrNotSettled))
			return nil
		}
		t := time.NewTimer(readbackInterval)
		select {
		case <-t.C:
		case <-req.ctx.Done():
			t.Stop()
		}
	}
}

// readSCPIChannel queries one channel and returns its value's text. A reply
// that does not fit the channel puts the device out of step, as in a poll.
func (d *Device) readSCPIChannel(lc *lineConn, ch *ChannelSpec) (string, error) {
	reply, err := d.ask(lc, ch.Query, d.spec.ReplyTimeout)
	if err != nil {
		return "", err
	}
	if ch.Reply == "" {
		if _, err := parseValue(ch.Type, reply); err != nil {
			return "", outOfStep("read-back %q of %s answered %q: %v", clip(ch.Query), ch.Name, clip(reply), err)
		}
		return reply, nil
	}
	f, _ := CompileReplyFormat(ch.Reply)
	vals, err := f.Match(reply)
	if err != nil {
		return "", outOfStep("read-back of %s: %v", ch.Name, err)
	}
	var text string
	var ok bool
	if f.IsRegexp() {
		text, ok = vals.Name(ch.Key)
	} else {
		text, ok = vals.Index(ch.Index)
	}
	if !ok {
		return "", outOfStep("read-back reply %q has no value for %s", clip(reply), ch.Name)
	}
	return text, nil
}
