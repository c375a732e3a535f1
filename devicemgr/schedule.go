package devicemgr

import (
	"context"

	"github.com/switchyard/switchyard/supervisor"
)

// schedule runs the poll groups at their periods and the queued commands in
// between, one at a time, until ctx ends or poll or exec returns an error (which
// ends the session). The ticks come from the Manager's shared pollClock; the I/O
// happens here, on the device's goroutine. Every group is polled at once when
// the session starts. A cycle that ends a period or more after its tick is an
// overrun: it is counted and the missed slot is skipped, never queued up.
func (d *Device) schedule(ctx context.Context, groups []*pollGroup, poll func(*pollGroup) error, exec func(*request) error) error {
	wake := make(chan struct{}, 1)
	turns := make([]*pollTurn, len(groups))
	for i, g := range groups {
		turns[i] = d.m.clock.subscribe(g.period, wake)
		defer d.m.clock.unsubscribe(turns[i])
		turns[i].due.Store(turns[i].now())
	}
	if len(groups) > 0 {
		// Non-blocking: a scheduler may already have signalled a token between
		// subscribe and the Store above, and this goroutine is the only reader.
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	pollDue := func() error {
		for i, g := range groups {
			tick := turns[i].pending()
			if tick == 0 {
				continue
			}
			if err := poll(g); err != nil {
				return err
			}
			if turns[i].served(tick) {
				d.overrunCtr.Inc()
				d.overruns.Add(1)
			}
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.mb.Notify():
		case <-wake:
			if err := pollDue(); err != nil {
				return err
			}
		}
		// Commands one at a time; polls that came due meanwhile go between them.
		for {
			served, err := d.serveOne(exec)
			if err != nil || !served {
				if err != nil {
					return err
				}
				break
			}
			select {
			case <-wake:
				if err := pollDue(); err != nil {
					return err
				}
			default:
			}
		}
	}
}

// serveOne takes the next message from the mailbox, if any, and serves it:
// a command through exec; a control message is done on receipt (the mailbox
// has already cancelled the command in progress for an abort, which is the
// only control a device acts on). It reports whether there was a message.
func (d *Device) serveOne(exec func(*request) error) (bool, error) {
	m, ok := d.mb.TryReceive()
	if !ok {
		return false, nil
	}
	cmd, isCmd := m.Body.(Command)
	if m.Kind != supervisor.KindCall || !isCmd {
		m.Done()
		return true, nil
	}
	err := exec(&request{msg: m, cmd: cmd, ctx: m.Context()})
	select { // for retire, which may be waiting for this command
	case d.served <- struct{}{}:
	default:
	}
	return true, err
}
