package devicemgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/backoff"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// Device is the process of one instrument. Run it with Serve (usually under a
// supervisor); read its state with Info from any goroutine.
type Device struct {
	m    *Manager
	spec Spec
	seq  seqs
	// mb is the device's mailbox: commands are calls on it, served one at a
	// time between polls; operators abort the command in progress through
	// its control lane. It outlives sessions and process restarts; queued
	// commands fail when a connection drops or the process restarts, and are
	// never replayed to the instrument.
	mb    *supervisor.Mailbox
	bo    backoff.Backoff // reconnect delays; owned by the Serve goroutine
	alive sync.Mutex      // held while Serve runs: never two connections to one instrument

	// replies is how the instrument answers (see replies.go); patterns are
	// the compiled patterns of string arguments, by command. Both immutable.
	replies  *replyModel
	patterns map[string][]*regexp.Regexp

	overruns atomic.Uint64 // poll cycles longer than their period

	// tags are the device's tags (never modified, replaced whole by an
	// in-place update); read for every sample by tag selectors (Manager.Tags).
	tags atomic.Pointer[map[string]string]
	// retiring is set when the Manager stops the device for good or for a
	// restart with a new spec (see retire): new commands are refused with
	// its error, and Serve's final state and samples give its reason.
	retiring atomic.Pointer[retirement]
	// served is signalled (never blocking) each time a command has been
	// served, so that retire can wait for the one in progress.
	served chan struct{}
	// final: a retired device published its final state.
	final atomic.Bool

	// The device's children of the Manager's metric vectors, looked up once
	// rather than per poll.
	pollCtr, overrunCtr                 prometheus.Counter
	requestCtr, unsolicitedCtr, stepCtr prometheus.Counter
	// gaugeHeld: this session counts in switchyard_devices_connected. Owned by
	// the Serve goroutine.
	gaugeHeld bool
	// report tells the supervisor the device's connection summary (see
	// supervisor.ReportStatus). Set by Serve; owned by the Serve goroutine.
	report func(status string)

	mu   sync.Mutex
	info Info
	// cfg is the spec as configured (before defaults), with the changes
	// applied in place since (see reconfigure); spec is what Serve runs.
	cfg Spec
}

// request is one command received from the mailbox.
type request struct {
	msg *supervisor.Message
	cmd Command
	ctx context.Context // msg.Context(): the caller's deadline; ends if it leaves or on abort
}

// begin reports whether the request may be sent. A request whose caller left,
// or that was aborted, before it reached the instrument is never sent.
func (req *request) begin(device string) bool {
	if req.ctx.Err() == nil {
		return true
	}
	req.reply(Reply{}, fmt.Errorf("device %s, command %s: not sent: %w", device, req.cmd, context.Cause(req.ctx)))
	return false
}

// abortSignal returns a context that ends only when the request is aborted by
// an operator (supervisor.ErrAborted), not when its caller leaves: a command
// already sent finishes or times out on its own, so that the instrument's
// reply is not left on the connection. Call stop when the command is done.
func (req *request) abortSignal() (abort context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	undo := context.AfterFunc(req.ctx, func() {
		if cause := context.Cause(req.ctx); errors.Is(cause, supervisor.ErrAborted) {
			cancel(cause)
		}
	})
	return ctx, func() { undo(); cancel(nil) }
}

// reply answers the caller; a reply to a caller that left is dropped (and
// counted by the mailbox).
func (req *request) reply(r Reply, err error) { _ = req.msg.Reply(r, err) }

// newDevice returns the process of cfg (a checked spec, before defaults);
// prev, if not nil, is the sequence counters of the device's previous process
// (a restart with a new spec).
func newDevice(m *Manager, cfg Spec, prev *seqs) *Device {
	spec := cfg.withDefaults()
	d := &Device{
		m:      m,
		spec:   spec,
		cfg:    cfg,
		seq:    newSeqs(spec.Channels, prev),
		served: make(chan struct{}, 1),
		mb: supervisor.NewMailbox(supervisor.MailboxOptions{
			Name: "device " + spec.Name,
			// A command waits at most the lock timeout for its turn; once
			// sent, its own reply timeout bounds it.
			QueueTimeout: spec.LockTimeout,
			CallTimeout:  supervisor.NoCallTimeout,
		}),
		bo: backoff.Backoff{
			Policy: backoff.Policy{Min: spec.BackoffMin, Max: spec.BackoffMax, Multiplier: spec.BackoffMultiplier, Jitter: 0.2},
			// Seeded per device: reproducible, yet devices do not retry in step.
			Rand: rand.New(rand.NewPCG(seedFor(spec.Name), 0x5317c4)).Float64,
		},
		replies:  newReplyModel(&spec),
		patterns: compileArgPatterns(spec.Commands),

		pollCtr:        m.metrics.polls.WithLabelValues(spec.Name),
		overrunCtr:     m.metrics.overruns.WithLabelValues(spec.Name),
		requestCtr:     m.metrics.requests.WithLabelValues(spec.Name),
		unsolicitedCtr: m.metrics.unsolicited.WithLabelValues(spec.Name),
		stepCtr:        m.metrics.outOfStep.WithLabelValues(spec.Name),
	}
	tags := spec.Tags
	d.tags.Store(&tags)
	d.info = Info{Name: spec.Name, Address: spec.Address, Driver: spec.Driver, Tags: spec.Tags, State: Stopped, ChangedAt: m.opts.Now()}
	for _, ch := range spec.Channels {
		d.info.Channels = append(d.info.Channels, ChannelInfo{Name: ch.Name, Query: ch.Query, Period: ch.Period, Unit: ch.Unit})
	}
	d.info.CommandSpecs = spec.Commands
	for _, c := range spec.Commands {
		d.info.Commands = append(d.info.Commands, c.Name)
		if c.Role != "" {
			if d.info.CommandRoles == nil {
				d.info.CommandRoles = map[string]string{}
			}
			d.info.CommandRoles[c.Name] = c.Role
		}
	}
	return d
}

// Name returns the device's name.
func (d *Device) Name() string { return d.spec.Name }

// Mailbox returns the device's mailbox, for its supervisor's ChildSpec: the
// supervisor then fails queued commands with supervisor.ErrRestarted when it
// restarts the process, and shows the mailbox's depth and the command in
// progress in its snapshot.
func (d *Device) Mailbox() *supervisor.Mailbox { return d.mb }

// Info returns a copy of the device's current state.
func (d *Device) Info() Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	i := d.info
	i.Overruns = d.overruns.Load()
	return i
}

// update changes the device's Info (on the Serve goroutine only), publishes it
// to state watchers and reports its summary to the supervisor.
func (d *Device) update(f func(*Info)) {
	d.mu.Lock()
	before := d.info.State
	f(&d.info)
	if d.info.State != before {
		d.info.ChangedAt = d.m.opts.Now()
	}
	snap := d.info
	d.mu.Unlock()
	d.m.feed.Publish(snap)
	if d.report != nil {
		d.report(snap.Summary())
	}
}

// Serve runs the device until ctx ends: connect, poll, and on failure publish bad
// samples and reconnect after a backoff. It returns nil when ctx ends; it returns
// an error only if the same device is already being served (two connections to one
// instrument are worse than none).
func (d *Device) Serve(ctx context.Context) error {
	if !d.alive.TryLock() {
		return fmt.Errorf("device %s: already running", d.spec.Name)
	}
	defer d.alive.Unlock()
	d.report = func(status string) { supervisor.ReportStatus(ctx, status) }
	defer d.stopped()
	failures := 0
	for ctx.Err() == nil {
		d.update(func(i *Info) { i.State = Connecting; i.NextAttempt = time.Time{} })
		// A command that slipped in while the device was not connected is not
		// sent on the new connection: its caller saw a device that was down.
		d.mb.FailQueued(fmt.Errorf("%w (reconnecting)", ErrNotConnected))
		start := d.m.opts.Now()
		err := d.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if d.m.opts.Now().Sub(start) >= d.m.opts.StableAfter {
			d.bo.Reset()
		}
		failures++
		q := qualityOf(err)
		d.m.metrics.failures.WithLabelValues(d.spec.Name, q.String()).Inc()
		if errors.Is(err, errOutOfStep) {
			d.stepCtr.Inc()
			d.mu.Lock()
			d.info.OutOfStep++
			d.mu.Unlock()
		}
		wait := d.bo.Next()
		d.m.opts.Logger.Warn("device connection failed", "device", d.spec.Name, "quality", q.String(), "err", err, "retry_in", wait)
		d.publishBad(q, err.Error())
		d.mb.FailQueued(fmt.Errorf("%w (%v)", ErrNotConnected, err))
		next := d.m.opts.Now().Add(wait)
		d.update(func(i *Info) {
			i.State = Backoff
			i.LastError = err.Error()
			i.ConnectedSince = time.Time{}
			i.NextAttempt = next
			i.Restarts = failures
		})
		if !d.waitBackoff(ctx, wait, errors.Is(err, errUnreachable)) {
			return nil
		}
	}
	return nil
}

// waitBackoff waits out a reconnect delay; it reports false if ctx ended.
// Meanwhile a TCP connect probes the instrument's address every
// ProbeInterval, and once the instrument has been seen unreachable (the
// failed dial that started the wait, or a failed probe), the first probe that
// connects ends the wait: an instrument that comes back is noticed at once,
// however long the backoff has grown. One that stays reachable (it failed
// some other way) waits out its backoff.
func (d *Device) waitBackoff(ctx context.Context, wait time.Duration, unreachable bool) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	var probe <-chan time.Time
	if d.spec.ProbeInterval > 0 && d.spec.ProbeInterval < wait {
		tick := time.NewTicker(d.spec.ProbeInterval)
		defer tick.Stop()
		probe = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-probe:
			dialer := net.Dialer{Timeout: min(d.spec.ConnectTimeout, d.spec.ProbeInterval)}
			c, err := dialer.DialContext(ctx, "tcp", d.spec.Address)
			if err != nil {
				unreachable = true
				continue
			}
			c.Close()
			if unreachable {
				d.m.opts.Logger.Info("device reachable again: reconnecting before the backoff ends", "device", d.spec.Name)
				return true
			}
		}
	}
}

// errUnreachable marks a failure to connect at all (refused, no route, dial
// timeout), as opposed to a connection that failed later.
var errUnreachable = errors.New("unreachable")

// session dials and runs one connection until it fails or ctx ends.
func (d *Device) session(ctx context.Context) error {
	defer func() {
		if d.gaugeHeld {
			d.m.metrics.connected.Dec()
			d.gaugeHeld = false
		}
	}()
	if d.spec.Driver == DriverModbus {
		return d.runModbus(ctx)
	}
	dialer := net.Dialer{Timeout: d.spec.ConnectTimeout}
	conn, err := dialer.DialContext(ctx, "tcp", d.spec.Address)
	if err != nil {
		// "dial tcp 127.0.0.1:5025: connect: connection refused"
		return unreachableError{err}
	}
	// A blocked read or write ends when ctx does.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
	if !sleepCtx(ctx, d.spec.ConnectDelay) {
		return ctx.Err()
	}
	lc := newLineConn(conn, &d.spec)
	switch d.spec.Driver {
	case DriverLines:
		return d.runLines(ctx, lc)
	default:
		return d.runSCPI(ctx, lc)
	}
}

func (d *Device) setConnected(identity string) {
	if !d.gaugeHeld {
		d.m.metrics.connected.Inc()
		d.gaugeHeld = true
	}
	now := d.m.opts.Now()
	d.update(func(i *Info) {
		i.State = Connected
		i.ConnectedSince = now
		i.NextAttempt = time.Time{}
		i.Identity = identity
	})
}

// publishBad publishes every channel with a bad quality and the reason.
func (d *Device) publishBad(q telemetry.Quality, reason string) {
	chans := make([]*ChannelSpec, len(d.spec.Channels))
	for i := range d.spec.Channels {
		chans[i] = &d.spec.Channels[i]
	}
	d.publishBadFor(chans, q, reason)
}

func (d *Device) publishBadFor(chans []*ChannelSpec, q telemetry.Quality, reason string) {
	if len(chans) == 0 {
		return
	}
	ts := d.m.opts.Now().UnixNano()
	batch := make([]telemetry.Sample, 0, len(chans))
	for _, ch := range chans {
		batch = append(batch, telemetry.Sample{
			Device: d.spec.Name, Channel: ch.Name, TimeNs: ts,
			Seq: d.seq.next(ch.Name), Quality: q, Err: clip(reason),
		})
	}
	d.m.pub.Publish(batch...)
}

// send calls the device's mailbox with a command and waits for its result: at
// most the lock timeout for its turn, then until the reply, within the
// command's Timeout and the caller's deadline (which fail the call with
// context.DeadlineExceeded, never cutting the exchange).
func (d *Device) send(ctx context.Context, cmd Command) (Reply, error) {
	if r := d.retiring.Load(); r != nil {
		return Reply{}, r.err
	}
	if st := d.Info().State; st != Connected {
		return Reply{}, fmt.Errorf("device %s is %s: %w", d.spec.Name, st, ErrNotConnected)
	}
	if _, err := d.render(cmd); err != nil {
		return Reply{}, err
	}
	if cmd.Timeout > 0 {
		// The command's timeout bounds how long its caller waits; the
		// exchange itself, once started, runs to its end (or the reply
		// timeout) on the device's lane, so the connection stays in step.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	v, err := d.mb.Call(ctx, cmd)
	rep, _ := v.(Reply)
	switch {
	case err == nil:
		return rep, nil
	case errors.Is(err, supervisor.ErrCallTimeout):
		return Reply{}, fmt.Errorf("device %s: the lane stayed busy for the lock timeout %v (command %s not sent): %w", d.spec.Name, d.spec.LockTimeout, cmd, ErrTimeout)
	case errors.Is(err, supervisor.ErrMailboxFull):
		return Reply{}, fmt.Errorf("device %s: command %s: %w: %w", d.spec.Name, cmd, ErrBusy, err)
	case errors.Is(err, supervisor.ErrRestarted), errors.Is(err, supervisor.ErrStopped):
		return Reply{}, fmt.Errorf("%w: %w", err, ErrNotConnected)
	}
	return rep, err
}

// Abort cancels the command in progress on the device, if any, through the
// mailbox's control lane (it overtakes queued commands), and returns that
// command ("" if the device was idle). A command not yet sent is not sent;
// one waiting for its reply or read-back fails at once with an error wrapping
// supervisor.ErrAborted, and since a reply may still arrive, the device then
// reconnects (re-running its init sequence). Queued commands are not
// aborted, but a reconnect fails them as any dropped connection does. reason
// appears in the aborted command's error.
func (d *Device) Abort(reason string) (string, error) {
	if reason == "" {
		reason = "abort"
	}
	f, ok, err := d.mb.Abort(reason)
	if err != nil {
		return "", fmt.Errorf("device %s: abort: %w", d.spec.Name, err)
	}
	if !ok {
		return "", nil
	}
	return fmt.Sprint(f.Body), nil
}

// qualityOf classifies a connection error.
func qualityOf(err error) telemetry.Quality {
	var ne net.Error
	switch {
	case errors.Is(err, errParse), errors.Is(err, errOutOfStep):
		return telemetry.ParseError
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return telemetry.Timeout
	case errors.As(err, &ne) && ne.Timeout():
		return telemetry.Timeout
	default:
		return telemetry.CommError
	}
}

var errParse = errors.New("unparsable reply")

// unreachableError is a failed dial: its message is the dial's, and it is
// errUnreachable.
type unreachableError struct{ err error }

func (e unreachableError) Error() string        { return e.err.Error() }
func (e unreachableError) Unwrap() error        { return e.err }
func (e unreachableError) Is(target error) bool { return target == errUnreachable }

// sleepCtx waits for d; it reports false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
