package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Service is anything that runs until its context ends or it fails.
// A nil return is a normal exit; an error or a panic is abnormal. After the
// supervisor cancels ctx, whatever Serve returns counts as a normal shutdown.
type Service interface {
	Serve(ctx context.Context) error
}

// Readier is implemented by services that need time before they are usable
// (a device that must connect and identify itself). The supervisor calls
// ServeReady instead of Serve and does not start the next sibling until
// ready is called or ServeReady returns; the child is Starting meanwhile.
// Calling ready more than once is harmless. A Service without ServeReady
// counts as ready as soon as it is started.
//
// The supervisor waits like that, doing nothing else, when the order
// matters: its own start, one_for_all and rest_for_one restarts, and Add.
// A one_for_one restart has no order to keep and does not hold the
// supervisor up. Either way ChildSpec.StartTimeout bounds the wait.
type Readier interface {
	ServeReady(ctx context.Context, ready func()) error
}

// ServiceFunc adapts a function to Service.
type ServiceFunc func(ctx context.Context) error

// Serve calls f(ctx).
func (f ServiceFunc) Serve(ctx context.Context) error { return f(ctx) }

// ReadyFunc adapts a function to Service and Readier.
type ReadyFunc func(ctx context.Context, ready func()) error

// Serve calls f with a ready callback that does nothing.
func (f ReadyFunc) Serve(ctx context.Context) error { return f(ctx, func() {}) }

// ServeReady calls f(ctx, ready).
func (f ReadyFunc) ServeReady(ctx context.Context, ready func()) error { return f(ctx, ready) }

// AutoShutdown says when a supervisor stops by itself because significant
// children have exited, as OTP's auto_shutdown does.
type AutoShutdown uint8

// Auto-shutdown modes.
const (
	// Never: significant children have no special effect.
	Never AutoShutdown = iota
	// AnySignificant: the supervisor stops normally when any significant
	// child exits by itself and is not restarted.
	AnySignificant
	// AllSignificant: the supervisor stops normally when every significant
	// child has exited by itself and will not be restarted.
	AllSignificant
)

// Default option values.
const (
	DefaultMaxRestarts = 3
	DefaultMaxTime     = 5 * time.Second
)

// Options configures a Supervisor. The zero value is a one_for_one
// supervisor allowing 3 restarts in 5 seconds, with default backoff.
type Options struct {
	// Strategy decides which children restart when one fails.
	// Default OneForOne.
	Strategy Strategy
	// MaxRestarts and MaxTime are the restart intensity: more than
	// MaxRestarts restart decisions within MaxTime make the supervisor stop
	// its children in reverse order and return an *EscalationError.
	// Defaults 3 and 5s (Elixir's; OTP's are 1 and 5s). A negative
	// MaxRestarts allows no restart at all. Intensity counts decisions at
	// the time of the failure, so it measures failure rate; Backoff paces
	// the restarts themselves.
	MaxRestarts int
	MaxTime     time.Duration
	// Backoff is the restart delay used by children whose ChildSpec.Backoff
	// is nil. Each zero field takes its documented default.
	Backoff Backoff
	// AutoShutdown says what the exit of significant children does.
	// Default Never.
	AutoShutdown AutoShutdown
	// Logger receives one record per lifecycle change. Default: discard.
	Logger *slog.Logger
	// Registry, if set, is where children with a ChildSpec.Name and a
	// Mailbox are registered. Default: none.
	Registry *Registry
	// MaxChildren bounds the number of children (DynamicSupervisor's
	// max_children); Add beyond it fails with ErrTooManyChildren.
	// Default 0: no limit.
	MaxChildren int
	// Rand returns numbers in [0,1) for backoff jitter.
	// Default math/rand/v2.Float64. Tests may fix it.
	Rand func() float64
}

func (o Options) withDefaults() Options {
	if o.MaxRestarts == 0 {
		o.MaxRestarts = DefaultMaxRestarts
	}
	if o.MaxTime <= 0 {
		o.MaxTime = DefaultMaxTime
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	o.Backoff = restartBackoff(o.Backoff)
	return o
}

// Supervisor runs child services and restarts them by OTP's rules.
// It is itself a Service (and a Readier), so supervisors nest.
// All methods are safe for concurrent use.
type Supervisor struct {
	id   string
	opts Options
	log  *slog.Logger
	hub  hub

	// mu guards the fields below and the observable fields of children.
	// It is never held while waiting for anything.
	mu       sync.Mutex
	children []*child
	run      *runState // non-nil while Serve runs
	state    State
	started  time.Time
	lastExit string
	parent   *Supervisor

	// Exit notifications from child goroutines: a mutex-guarded queue and
	// a 1-buffered wake channel, so a child never blocks on the loop.
	noteMu sync.Mutex
	notes  []exitNote
	wake   chan struct{}

	// Owned by the goroutine running Serve.
	ctx        context.Context // Serve's ctx
	base       context.Context // parent of children's contexts; never cancelled by ctx
	restartLog []time.Time
	term       error // set to end the loop; errNormalStop for a normal stop
}

type runState struct {
	reqs chan request
	done chan struct{}
}

type request struct {
	add     *ChildSpec
	remove  string
	restart string
	reply   chan error
}

// exitNote reports that an incarnation exited or, with ready set, that it
// called its ready callback.
type exitNote struct {
	c     *child
	inst  *instance
	ready bool
}

// errNormalStop ends the loop without an error (auto-shutdown or ctx done).
var errNormalStop = errors.New("normal stop")

// New returns a stopped supervisor; add children with Add and run it with Serve.
func New(id string, opts Options) *Supervisor {
	opts = opts.withDefaults()
	return &Supervisor{
		id:    id,
		opts:  opts,
		log:   opts.Logger.With("supervisor", id),
		state: Stopped,
		wake:  make(chan struct{}, 1),
	}
}

// ID returns the supervisor's id.
func (s *Supervisor) ID() string { return s.id }

// Serve starts the children in order and supervises them until ctx ends,
// the restart intensity is exceeded (an *EscalationError is returned), or
// auto-shutdown applies (nil). In every case it stops the children in
// reverse order before returning. Serve returns nil when ctx ends, or an
// error wrapping ErrLeaked if a child goroutine would not exit.
// A supervisor runs at most once at a time (ErrAlreadyRunning); it may be
// served again after Serve returns, as a parent does when restarting it.
func (s *Supervisor) Serve(ctx context.Context) error {
	return s.ServeReady(ctx, nil)
}

// ServeReady is Serve, calling ready (if not nil) once every child has been
// started or scheduled for restart. A parent uses it to start the next
// sibling only once this whole subtree is up.
func (s *Supervisor) ServeReady(ctx context.Context, ready func()) error {
	r := &runState{reqs: make(chan request), done: make(chan struct{})}
	s.mu.Lock()
	if s.run != nil {
		s.mu.Unlock()
		return fmt.Errorf("supervisor %q: %w", s.id, ErrAlreadyRunning)
	}
	s.run = r
	s.state = Starting
	s.started = time.Now()
	s.mu.Unlock()

	s.ctx = ctx
	s.base = context.WithoutCancel(ctx)
	s.restartLog = nil
	s.term = nil
	s.emit(Event{Kind: EventStarting})

	err := s.loop(r, ready)

	s.mu.Lock()
	s.run = nil
	s.state = Stopped
	switch {
	case err != nil:
		s.lastExit = err.Error()
	default:
		s.lastExit = "shutdown"
	}
	s.mu.Unlock()
	close(r.done)
	ev := Event{Kind: EventStopped}
	if err != nil {
		ev.Reason = err.Error()
	}
	s.emit(ev)
	return err
}

func (s *Supervisor) loop(r *runState, ready func()) error {
	s.drainNotes() // exits of leaked goroutines from a previous run
	now := time.Now()
	for _, c := range s.snapshotChildren() {
		c.failures = 0
		c.pending = true
		c.async = false // the first start is in order
		c.next = now
	}
	s.startDue()
	if s.term == nil && s.ctx.Err() == nil {
		s.mu.Lock()
		s.state = Running
		s.mu.Unlock()
		if ready != nil {
			ready()
		}
	}

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.term == nil {
		if s.ctx.Err() != nil {
			s.term = errNormalStop
			break
		}
		s.drainNotes()
		if s.term != nil {
			break
		}
		s.startDue()
		if s.term != nil {
			break
		}
		s.checkStartDeadlines()
		if s.term != nil {
			break
		}
		var tc <-chan time.Time
		if next, ok := s.nextWake(); ok {
			timer.Reset(time.Until(next))
			tc = timer.C
		}
		select {
		case <-s.ctx.Done():
		case <-s.wake:
		case <-tc:
		case req := <-r.reqs:
			req.reply <- s.handle(req)
		}
	}

	s.mu.Lock()
	s.state = Stopping
	s.mu.Unlock()
	s.stopAll()
	if errors.Is(s.term, errNormalStop) {
		var leaked []string
		for _, c := range s.snapshotChildren() {
			if c.alive() {
				leaked = append(leaked, c.spec.ID)
			}
		}
		if len(leaked) > 0 {
			return fmt.Errorf("supervisor %q: children %q: %w", s.id, leaked, ErrLeaked)
		}
		return nil
	}
	return s.term
}

// post queues an exit notification; it never blocks.
func (s *Supervisor) post(n exitNote) {
	s.noteMu.Lock()
	s.notes = append(s.notes, n)
	s.noteMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Supervisor) drainNotes() {
	for s.term == nil {
		s.noteMu.Lock()
		notes := s.notes
		s.notes = nil
		s.noteMu.Unlock()
		if len(notes) == 0 {
			return
		}
		for i, n := range notes {
			if s.term != nil {
				// Keep the rest for the leak bookkeeping in stopAll.
				s.noteMu.Lock()
				s.notes = append(notes[i:], s.notes...)
				s.noteMu.Unlock()
				return
			}
			if n.ready {
				s.onReady(n.c, n.inst)
			} else {
				s.onExit(n.c, n.inst)
			}
		}
	}
}

func (s *Supervisor) snapshotChildren() []*child {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*child(nil), s.children...)
}

func (s *Supervisor) setState(c *child, st State) {
	s.mu.Lock()
	c.state = st
	if st != BackingOff {
		c.nextShown = time.Time{}
	}
	s.mu.Unlock()
}
