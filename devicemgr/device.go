package devicemgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// Device is the process of one instrument. Run it with Serve (usually under a
// supervisor); read its state with Info from any goroutine.
type Device struct {
	m     *Manager
	spec  Spec
	seq   seqs
	cmds  chan *request
	bo    supervisor.Retry // reconnect delays; owned by the Serve goroutine
	alive sync.Mutex       // held while Serve runs: never two connections to one instrument

	overruns atomic.Uint64 // poll cycles longer than their period

	// The device's children of the Manager's metric vectors, looked up once
	// rather than per poll.
	pollCtr, overrunCtr prometheus.Counter
	// gaugeHeld: this session counts in switchyard_devices_connected. Owned by
	// the Serve goroutine.
	gaugeHeld bool
	// report tells the supervisor the device's connection summary (see
	// supervisor.ReportStatus). Set by Serve; owned by the Serve goroutine.
	report func(status string)

	mu   sync.Mutex
	info Info
}

type request struct {
	ctx context.Context
	// state: reqQueued until the device starts it (reqStarted) or the caller
	// gives up waiting for its turn (reqAbandoned); whoever moves it first wins,
	// so an abandoned command is never sent.
	state atomic.Int32
	cmd   Command
	reply chan result // buffered 1: the device never blocks on a caller that left
}

const (
	reqQueued int32 = iota
	reqStarted
	reqAbandoned
)

// begin claims a queued request for execution. It reports false, after
// answering the caller if still useful, when the request must not be sent:
// its caller left or gave up waiting for the lane.
func (req *request) begin() bool {
	if !req.state.CompareAndSwap(reqQueued, reqStarted) {
		return false // abandoned: its caller already has ErrTimeout
	}
	if err := req.ctx.Err(); err != nil {
		req.reply <- result{err: err} // the caller left while queued: never sent
		return false
	}
	return true
}

type result struct {
	reply Reply
	err   error
}

func newDevice(m *Manager, spec Spec) *Device {
	d := &Device{
		m:    m,
		spec: spec,
		seq:  newSeqs(spec.Channels),
		cmds: make(chan *request, 16),
		bo: supervisor.Retry{
			Backoff: supervisor.Backoff{Min: spec.BackoffMin, Max: spec.BackoffMax, Jitter: 0.2},
			// Seeded per device: reproducible, yet devices do not retry in step.
			Rand: rand.New(rand.NewPCG(seedFor(spec.Name), 0x5317c4)).Float64,
		},

		pollCtr:    m.metrics.polls.WithLabelValues(spec.Name),
		overrunCtr: m.metrics.overruns.WithLabelValues(spec.Name),
	}
	d.info = Info{Name: spec.Name, Address: spec.Address, Driver: spec.Driver, Tags: spec.Tags, State: Stopped, ChangedAt: m.opts.Now()}
	for _, ch := range spec.Channels {
		d.info.Channels = append(d.info.Channels, ChannelInfo{Name: ch.Name, Query: ch.Query, Period: ch.Period, Unit: ch.Unit})
	}
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
	defer func() {
		d.update(func(i *Info) {
			i.State = Stopped
			i.ConnectedSince = time.Time{}
			i.NextAttempt = time.Time{}
		})
		d.publishBad(telemetry.Disconnected, "device stopped")
		d.failQueued(fmt.Errorf("device %s stopped: %w", d.spec.Name, ErrNotConnected))
	}()
	failures := 0
	for ctx.Err() == nil {
		d.update(func(i *Info) { i.State = Connecting; i.NextAttempt = time.Time{} })
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
		wait := d.bo.Next()
		d.m.opts.Logger.Warn("device connection failed", "device", d.spec.Name, "quality", q.String(), "err", err, "retry_in", wait)
		d.publishBad(q, err.Error())
		d.failQueued(fmt.Errorf("device %s: %w (%v)", d.spec.Name, ErrNotConnected, err))
		next := d.m.opts.Now().Add(wait)
		d.update(func(i *Info) {
			i.State = Backoff
			i.LastError = err.Error()
			i.ConnectedSince = time.Time{}
			i.NextAttempt = next
			i.Restarts = failures
		})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

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
		return fmt.Errorf("dial %s: %w", d.spec.Address, err)
	}
	// A blocked read or write ends when ctx does.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
	}()
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

// send queues a command for the device's goroutine and waits for its result.
func (d *Device) send(ctx context.Context, cmd Command) (Reply, error) {
	if d.Info().State != Connected {
		return Reply{}, fmt.Errorf("device %s is %s: %w", d.spec.Name, d.Info().State, ErrNotConnected)
	}
	if _, err := d.render(cmd); err != nil {
		return Reply{}, err
	}
	req := &request{ctx: ctx, cmd: cmd, reply: make(chan result, 1)}
	lock := time.NewTimer(d.spec.LockTimeout)
	defer lock.Stop()
	busy := fmt.Errorf("device %s: the lane stayed busy for the lock timeout %v: %w", d.spec.Name, d.spec.LockTimeout, ErrTimeout)
	select {
	case d.cmds <- req:
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	case <-lock.C:
		return Reply{}, busy
	}
	for {
		select {
		case r := <-req.reply:
			return r.reply, r.err
		case <-ctx.Done():
			return Reply{}, ctx.Err()
		case <-lock.C:
			if req.state.CompareAndSwap(reqQueued, reqAbandoned) {
				return Reply{}, busy
			}
			// Started in time: wait for its own reply timeout.
		}
	}
}

// failQueued fails every queued command: commands are never replayed to the
// instrument on a new connection.
func (d *Device) failQueued(err error) {
	for {
		select {
		case req := <-d.cmds:
			if req.state.CompareAndSwap(reqQueued, reqStarted) {
				req.reply <- result{err: err}
			}
		default:
			return
		}
	}
}

// qualityOf classifies a connection error.
func qualityOf(err error) telemetry.Quality {
	var ne net.Error
	switch {
	case errors.Is(err, errParse):
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
