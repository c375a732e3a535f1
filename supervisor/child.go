package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// RestartType says when a child is restarted, with OTP's meaning.
type RestartType uint8

// Restart types. The zero value is Permanent, as in OTP.
const (
	// Permanent children are always restarted.
	Permanent RestartType = iota
	// Transient children are restarted only after an abnormal exit
	// (an error or a panic).
	Transient
	// Temporary children are never restarted, not even when a sibling's
	// failure stops them; once they exit they are removed.
	Temporary
)

var restartNames = [...]string{"permanent", "transient", "temporary"}

// String returns "permanent", "transient" or "temporary".
func (r RestartType) String() string {
	if int(r) < len(restartNames) {
		return restartNames[r]
	}
	return "unknown"
}

// ShutdownInfinity as ChildSpec.Shutdown waits for the child without limit.
// It is the default for children that are supervisors, as in OTP.
const ShutdownInfinity time.Duration = -1

// Default child values.
const (
	DefaultShutdown = 5 * time.Second
	DefaultKillWait = time.Second
)

// ChildSpec describes one child of a supervisor.
type ChildSpec struct {
	// ID names the child; required and unique within its supervisor.
	ID string
	// Service is what runs; required. If it also implements Readier, the
	// supervisor waits for its ready call before starting the next child.
	Service Service
	// Restart is the restart type. Default Permanent.
	Restart RestartType
	// Significant children trigger the supervisor's AutoShutdown when they
	// exit by themselves. They must be Transient or Temporary.
	Significant bool
	// Shutdown is how long to wait after cancelling the child's context
	// before calling Kill. Default 5s for workers and ShutdownInfinity for
	// supervisors.
	Shutdown time.Duration
	// Kill, if set, is called when the child outlives Shutdown; it should
	// make Serve return (for a device: close its socket). Default none.
	Kill func()
	// KillWait is how long to wait after Kill before marking the child
	// Leaked. Default 1s.
	KillWait time.Duration
	// StartTimeout bounds the wait for a Readier's ready call; a child
	// that is not ready in time is stopped and counts as failed.
	// Default 0: wait until ready, exit, or the supervisor stops.
	StartTimeout time.Duration
	// Backoff overrides the supervisor's Options.Backoff when not nil.
	Backoff *Backoff
	// Mailbox, if set, is the child's mailbox. The supervisor opens it
	// when the child starts and, when the child exits, fails its queued
	// and in-progress calls with ErrRestarted or ErrStopped: requests are
	// never replayed to a new incarnation.
	Mailbox *Mailbox
	// Name, if set together with Mailbox and Options.Registry, registers
	// the mailbox under this name for as long as the child is a child,
	// across restarts.
	Name string
}

func (c ChildSpec) validate() error {
	if c.ID == "" {
		return errors.New("child spec: ID is empty")
	}
	if c.Service == nil {
		return fmt.Errorf("child spec %q: Service is nil", c.ID)
	}
	if c.Restart > Temporary {
		return fmt.Errorf("child spec %q: unknown restart type %d", c.ID, c.Restart)
	}
	return nil
}

// child is the supervisor's record of one child. The loop goroutine is the
// only writer; fields shown by Snapshot are written under Supervisor.mu.
type child struct {
	spec  ChildSpec
	sub   *Supervisor // non-nil if the service is a supervisor
	inst  *instance   // current or last incarnation
	runs  int         // incarnations started
	state State

	restarts  int
	lastExit  string
	started   time.Time
	nextShown time.Time // NextRestart as shown in snapshots

	// Loop-only.
	async    bool      // start without waiting for ready (one_for_one restarts)
	deadline time.Time // StartTimeout of an async start; zero if none
	failures int       // consecutive restarts, for backoff
	pending  bool      // waiting to be (re)started at next
	next     time.Time // when to start, if pending
	removing bool      // Remove was asked while the goroutine leaked
	removed  bool
}

func newChild(spec ChildSpec) *child {
	c := &child{spec: spec, state: Stopped}
	c.sub, _ = spec.Service.(*Supervisor)
	return c
}

func (c *child) alive() bool { return c.inst != nil && !c.inst.exited() }

func (c *child) shutdown() time.Duration {
	switch {
	case c.spec.Shutdown != 0:
		return c.spec.Shutdown
	case c.sub != nil:
		return ShutdownInfinity
	default:
		return DefaultShutdown
	}
}

func (c *child) killWait() time.Duration {
	if c.spec.KillWait > 0 {
		return c.spec.KillWait
	}
	return DefaultKillWait
}

// instance is one incarnation of a child: one goroutine running Serve.
type instance struct {
	cancel context.CancelFunc
	ready  chan struct{} // closed by the ready callback
	done   chan struct{} // closed after err is set
	err    error
	status string // last ReportStatus; guarded by Supervisor.mu

	// Loop-only.
	readySeen bool // Running was recorded for it
	stopping  bool // the supervisor cancelled it: any exit is normal
	handled   bool // its exit has been accounted for
}

func (i *instance) exited() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// launch starts one incarnation of c on its own goroutine and makes it c.inst.
func (s *Supervisor) launch(c *child) *instance {
	ctx, cancel := context.WithCancel(s.base)
	inst := &instance{cancel: cancel, ready: make(chan struct{}), done: make(chan struct{})}
	ctx = context.WithValue(ctx, reporterKey{}, &reporter{s: s, c: c, inst: inst})
	var once sync.Once
	ready := func() {
		once.Do(func() {
			close(inst.ready)
			s.post(exitNote{c: c, inst: inst, ready: true})
		})
	}
	svc := c.spec.Service
	// c.inst is the new incarnation before its goroutine runs: ReportStatus
	// from that goroutine checks it.
	s.mu.Lock() // Snapshot reads c.inst to show a leaked goroutine that ended
	c.inst = inst
	s.mu.Unlock()
	go func() {
		inst.err = serveOnce(ctx, svc, ready)
		close(inst.done)
		s.post(exitNote{c: c, inst: inst})
	}()
	return inst
}

func serveOnce(ctx context.Context, svc Service, ready func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	if r, ok := svc.(Readier); ok {
		return r.ServeReady(ctx, ready)
	}
	ready()
	return svc.Serve(ctx)
}

// start starts c. Unless c.async, it waits until c is ready, fails, or the
// supervisor stops: initial starts, group restarts and Add keep the order.
// A one_for_one restart has no order to keep, so it does not hold the
// supervisor up while a slow child gets ready; its readiness arrives as a
// note (onReady) and its StartTimeout is checked by the loop.
func (s *Supervisor) start(c *child) {
	c.pending = false
	if c.alive() {
		// A leaked incarnation still runs: never start one beside it.
		c.pending = true
		return
	}
	now := time.Now()
	s.mu.Lock()
	if c.runs > 0 {
		c.restarts++
	}
	c.runs++
	c.state = Starting
	c.started = now
	c.nextShown = time.Time{}
	s.mu.Unlock()
	if c.spec.Mailbox != nil {
		c.spec.Mailbox.open()
	}
	inst := s.launch(c)

	c.deadline = time.Time{}
	if c.async {
		if c.spec.StartTimeout > 0 {
			c.deadline = now.Add(c.spec.StartTimeout)
		}
		return
	}

	var timeout <-chan time.Time
	if c.spec.StartTimeout > 0 {
		t := time.NewTimer(c.spec.StartTimeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-inst.ready:
		s.onReady(c, inst)
	case <-inst.done:
		// Ready then exited at once: report both, in that order.
		select {
		case <-inst.ready:
			s.onReady(c, inst)
		default:
		}
		s.onExit(c, inst)
	case <-timeout:
		s.startTimedOut(c, inst)
	case <-s.ctx.Done():
		// The loop sees ctx and stops everything, this child included.
	}
}

// onReady records that inst called its ready callback.
func (s *Supervisor) onReady(c *child, inst *instance) {
	if inst != c.inst || inst.handled || inst.readySeen || c.removed {
		return
	}
	inst.readySeen = true
	c.deadline = time.Time{}
	s.setState(c, Running)
	s.emit(Event{Kind: EventStarted, Child: c.spec.ID, Restarts: c.restarts})
	s.log.Debug("child started", "child", c.spec.ID, "restarts", c.restarts)
}

// startTimedOut stops a child that did not get ready within StartTimeout
// and counts it as failed.
func (s *Supervisor) startTimedOut(c *child, inst *instance) {
	c.deadline = time.Time{}
	err := fmt.Errorf("child %q: %w after %s", c.spec.ID, ErrStartTimeout, c.spec.StartTimeout)
	s.stopInstance(c, inst, nil)
	if inst.handled {
		s.mu.Lock()
		c.lastExit = err.Error()
		s.mu.Unlock()
	}
	s.afterExit(c, true, err)
}

// checkStartDeadlines applies StartTimeout to async starts.
func (s *Supervisor) checkStartDeadlines() {
	now := time.Now()
	for _, c := range s.snapshotChildren() {
		if s.term != nil {
			return
		}
		inst := c.inst
		if c.deadline.IsZero() || c.deadline.After(now) || inst == nil || inst.handled || inst.readySeen {
			continue
		}
		select {
		case <-inst.ready:
			continue // its ready note is queued
		default:
		}
		s.startTimedOut(c, inst)
	}
}

// stop stops c if it runs, as a supervisor does on shutdown or for a
// sibling's restart; the exit is normal and triggers no restart.
// Its mailbox's pending calls fail with why.
func (s *Supervisor) stop(c *child, why error) {
	s.closeMailbox(c, why)
	inst := c.inst
	if inst == nil || inst.handled {
		if c.state != Leaked {
			s.setState(c, Stopped)
		}
		return
	}
	s.stopInstance(c, inst, why)
}

// stopInstance cancels inst, waits Shutdown, calls Kill, waits KillWait,
// and marks c Leaked if the goroutine still runs. It never restarts.
// why is the reason for the stop, nil for none; a restart (ErrRestarted)
// says so in the exit reason.
func (s *Supervisor) stopInstance(c *child, inst *instance, why error) {
	c.deadline = time.Time{}
	if !inst.exited() {
		inst.stopping = true
		s.setState(c, Stopping)
		inst.cancel()
		if !wait(inst.done, c.shutdown()) {
			if c.spec.Kill != nil {
				s.log.Warn("child did not stop in time; killing", "child", c.spec.ID, "shutdown", c.shutdown())
				safeCall(c.spec.Kill)
			}
			if !wait(inst.done, c.killWait()) {
				s.mu.Lock()
				c.state = Leaked
				c.lastExit = "leaked: did not exit after shutdown and kill"
				s.mu.Unlock()
				s.log.Error("child leaked: goroutine did not exit; it will not be restarted beside itself", "child", c.spec.ID)
				s.emit(Event{Kind: EventLeaked, Child: c.spec.ID, Reason: c.lastExit})
				return
			}
		}
	}
	inst.handled = true
	inst.cancel()
	reason := "shutdown"
	if errors.Is(why, ErrRestarted) {
		reason = "shutdown for a restart"
	}
	if inst.err != nil && !errors.Is(inst.err, context.Canceled) {
		reason += ": " + exitText(inst.err)
	} else if !inst.stopping {
		reason = exitText(inst.err)
	}
	s.mu.Lock()
	c.state = Stopped
	c.lastExit = reason
	s.mu.Unlock()
	s.emit(Event{Kind: EventStopped, Child: c.spec.ID, Reason: reason})
}

// wait waits for done up to d (forever if d < 0) and reports whether it closed.
func wait(done <-chan struct{}, d time.Duration) bool {
	if d < 0 {
		<-done
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func safeCall(f func()) {
	defer func() { _ = recover() }()
	f()
}

// startDue starts, in order, the pending children whose time has come.
func (s *Supervisor) startDue() {
	now := time.Now()
	for _, c := range s.snapshotChildren() {
		if s.term != nil || s.ctx.Err() != nil {
			return
		}
		if c.removed || !c.pending || c.next.After(now) || c.alive() {
			continue
		}
		s.start(c)
	}
}

// nextWake is the earliest pending start that can happen (not blocked by a
// leaked incarnation) or async start deadline.
func (s *Supervisor) nextWake() (time.Time, bool) {
	var next time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(next) {
			next, found = t, true
		}
	}
	for _, c := range s.snapshotChildren() {
		if c.pending && !c.alive() {
			consider(c.next)
		}
		if !c.deadline.IsZero() {
			consider(c.deadline)
		}
	}
	return next, found
}

// stopAll stops every child in reverse order.
func (s *Supervisor) stopAll() {
	cs := s.snapshotChildren()
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		c.pending = false
		s.stop(c, ErrStopped)
		if c.spec.Restart == Temporary && c.runs > 0 && !c.alive() {
			s.mu.Lock()
			s.dropLocked(c)
			s.mu.Unlock()
		}
	}
}

func exitText(err error) string {
	if err == nil {
		return "normal"
	}
	var p *PanicError
	if errors.As(err, &p) {
		return p.Error() + "\n\n" + string(p.Stack)
	}
	return err.Error()
}
