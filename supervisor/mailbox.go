package supervisor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// MessageKind is the lane a message came by.
type MessageKind uint8

// Message kinds.
const (
	KindCall    MessageKind = iota + 1 // request/reply; the caller waits
	KindCast                           // fire and forget
	KindControl                        // control lane; overtakes calls and casts
)

var kindNames = [...]string{"", "call", "cast", "control"}

// String returns "call", "cast" or "control".
func (k MessageKind) String() string {
	if k != 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ControlKind says what a control message asks.
type ControlKind uint8

// Control kinds. The mailbox itself acts only on ControlAbort (it cancels
// the message in progress); the process decides what ControlStop and
// ControlReconfigure mean.
const (
	ControlStop ControlKind = iota + 1
	ControlAbort
	ControlReconfigure
)

var controlNames = [...]string{"", "stop", "abort", "reconfigure"}

// String returns "stop", "abort" or "reconfigure".
func (k ControlKind) String() string {
	if k != 0 && int(k) < len(controlNames) {
		return controlNames[k]
	}
	return "unknown"
}

// Default mailbox values.
const (
	DefaultMailboxCapacity = 64
	DefaultControlCapacity = 16
	DefaultCallTimeout     = 5 * time.Second
)

// MailboxOptions configures a Mailbox; the zero value works.
type MailboxOptions struct {
	// Name appears in error messages. Default "mailbox".
	Name string
	// Capacity bounds the ordinary lane (calls and casts together).
	// When full, Call and Cast fail at once with ErrMailboxFull and the
	// rejection is counted (policy: reject newest). Default 64.
	Capacity int
	// ControlCapacity bounds the control lane separately, so control
	// messages are accepted while the ordinary lane is full. Default 16.
	ControlCapacity int
	// CallTimeout bounds every Call in addition to the caller's context.
	// Default 5s; NoCallTimeout leaves the bound to the caller's context and
	// QueueTimeout (for a process whose every reply is itself bounded, such
	// as a device whose replies have timeouts).
	CallTimeout time.Duration
	// QueueTimeout, if positive, bounds how long a call may wait in the queue:
	// a call the process has not received within it is removed, never
	// handled, and fails with ErrCallTimeout. Once received, the call waits
	// for its reply (within CallTimeout and the caller's context). This is
	// the lock timeout of instrument I/O: how long a request waits for the
	// device to be free. Default 0: no separate bound.
	QueueTimeout time.Duration
}

// NoCallTimeout as MailboxOptions.CallTimeout bounds calls only by the
// caller's context and QueueTimeout.
const NoCallTimeout time.Duration = -1

// Mailbox is a process's inbox with two lanes: a control lane whose
// messages (stop, abort, reconfigure) are received before any queued
// ordinary message, and an ordinary lane of calls and casts. Each lane is
// FIFO. The process receives with Receive, one message at a time; the last
// received message is "in progress" until it is replied to, marked Done,
// or the next Receive.
//
// A Mailbox outlives the incarnations of its process. When a supervised
// process exits, queued and in-progress calls fail with ErrRestarted (or
// ErrStopped) and queued casts and control messages are dropped and
// counted; nothing is replayed to the next incarnation. While the process
// is down, Call, Cast and Control fail at once.
//
// All methods are safe for concurrent use.
type Mailbox struct {
	name         string
	capacity     int
	ctlCapacity  int
	callTimeout  time.Duration
	queueTimeout time.Duration

	mu      sync.Mutex
	ctl     []*Message
	ord     []*Message
	current *Message
	shutErr error // non-nil while closed
	stats   MailboxStats
	wake    chan struct{} // 1-buffered; coalesced wake-ups for Receive
}

// MailboxStats counts what a mailbox did, for metrics.
type MailboxStats struct {
	Depth       int    // queued messages now, both lanes
	Rejected    uint64 // refused because a lane was full or the process was down
	Expired     uint64 // calls whose caller gave up before they were received
	LateReplies uint64 // replies that arrived after the caller gave up
	Dropped     uint64 // queued messages failed or discarded because the process exited
	Received    uint64 // messages handed to the process
}

// NewMailbox returns an open, empty mailbox.
func NewMailbox(opts MailboxOptions) *Mailbox {
	if opts.Name == "" {
		opts.Name = "mailbox"
	}
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultMailboxCapacity
	}
	if opts.ControlCapacity <= 0 {
		opts.ControlCapacity = DefaultControlCapacity
	}
	if opts.CallTimeout == 0 || opts.CallTimeout < 0 && opts.CallTimeout != NoCallTimeout {
		opts.CallTimeout = DefaultCallTimeout
	}
	return &Mailbox{
		name:         opts.Name,
		capacity:     opts.Capacity,
		ctlCapacity:  opts.ControlCapacity,
		callTimeout:  opts.CallTimeout,
		queueTimeout: max(opts.QueueTimeout, 0),
		wake:         make(chan struct{}, 1),
	}
}

type msgState uint8

const (
	queued msgState = iota
	inProgress
	finished  // replied or done
	abandoned // the caller gave up
	failed    // the process exited
)

// Message is one message in a mailbox.
type Message struct {
	Kind    MessageKind
	Control ControlKind // for KindControl
	Body    any
	Sent    time.Time

	mb     *Mailbox
	ctx    context.Context
	cancel func(cause error)
	reply  chan reply // calls only; 1-buffered
	state  msgState   // guarded by mb.mu
}

type reply struct {
	v   any
	err error
}

// Context is cancelled when the message should no longer be worked on: its
// caller gave up, a ControlAbort arrived while it was in progress, or the
// process exited; context.Cause tells which (an error wrapping
// ErrCallTimeout or the caller's context error, ErrAborted, or
// ErrRestarted/ErrStopped). For a call it carries the caller's deadline
// (bounded by CallTimeout), so the process knows how long the caller waits.
// Pass it to the hardware I/O that serves the message.
func (m *Message) Context() context.Context { return m.ctx }

// Reply answers a call and ends its handling. A reply to a caller that has
// given up is dropped, counted, and reported as an error wrapping
// ErrCallTimeout (or ErrStopped if the process exited meanwhile). For casts
// and control messages Reply is the same as Done.
func (m *Message) Reply(v any, err error) error {
	mb := m.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	defer mb.releaseLocked(m)
	if m.Kind != KindCall {
		m.state = finished
		return nil
	}
	switch m.state {
	case queued, inProgress:
		m.reply <- reply{v, err}
		m.state = finished
		return nil
	case abandoned:
		mb.stats.LateReplies++
		return fmt.Errorf("%s: reply to %v dropped, the caller gave up: %w", mb.name, m.Body, ErrCallTimeout)
	case failed:
		mb.stats.LateReplies++
		return fmt.Errorf("%s: reply to %v dropped, the process exited: %w", mb.name, m.Body, ErrStopped)
	default:
		return fmt.Errorf("%s: reply to %v: already replied", mb.name, m.Body)
	}
}

// Done ends the handling of a message without replying. A call ended this
// way, whose caller still waits, fails with an error.
func (m *Message) Done() {
	mb := m.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if m.state == queued || m.state == inProgress {
		if m.Kind == KindCall {
			m.reply <- reply{err: fmt.Errorf("%s: call %v: ended without a reply", mb.name, m.Body)}
		}
		m.state = finished
	}
	mb.releaseLocked(m)
}

// releaseLocked ends m's handling: its context is cancelled and it is no
// longer in progress.
func (mb *Mailbox) releaseLocked(m *Message) {
	m.cancel(errHandled)
	if mb.current == m {
		mb.current = nil
	}
}

// errHandled is the cause of a message context ended by its reply or Done.
var errHandled = errors.New("message handled")

func (mb *Mailbox) newMessage(kind MessageKind, body any, deadline time.Time) *Message {
	ctx, cancel := context.WithCancelCause(context.Background())
	if !deadline.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, deadline)
		causeCancel := cancel
		cancel = func(cause error) { causeCancel(cause); stop() }
	}
	return &Message{Kind: kind, Body: body, Sent: time.Now(), mb: mb, ctx: ctx, cancel: cancel}
}

// Call sends body on the ordinary lane and waits for the reply, at most
// until ctx ends or the mailbox's CallTimeout passes. A caller that gives
// up cancels the message's Context; if the message was still queued it is
// removed and never handled, and a late reply is dropped.
func (mb *Mailbox) Call(ctx context.Context, body any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s: call %v: %w", mb.name, body, err)
	}
	var deadline time.Time
	var total <-chan time.Time
	if mb.callTimeout > 0 {
		deadline = time.Now().Add(mb.callTimeout)
		t := time.NewTimer(mb.callTimeout)
		defer t.Stop()
		total = t.C
	}
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	m := mb.newMessage(KindCall, body, deadline)
	m.reply = make(chan reply, 1)
	if err := mb.enqueue(m); err != nil {
		m.cancel(err)
		return nil, err
	}
	var inQueue <-chan time.Time
	if mb.queueTimeout > 0 {
		t := time.NewTimer(mb.queueTimeout)
		defer t.Stop()
		inQueue = t.C
	}
	var why error
wait:
	for {
		select {
		case r := <-m.reply:
			return r.v, r.err
		case <-ctx.Done():
			why = ctx.Err()
			break wait
		case <-total:
			why = fmt.Errorf("%w after %s", ErrCallTimeout, mb.callTimeout)
			break wait
		case <-inQueue:
			inQueue = nil
			mb.mu.Lock()
			waiting := m.state == queued
			mb.mu.Unlock()
			if waiting {
				why = fmt.Errorf("%w: not received within the queue timeout %s", ErrCallTimeout, mb.queueTimeout)
				break wait
			}
			// Received in time: wait for the reply.
		}
	}
	mb.mu.Lock()
	switch m.state {
	case queued:
		mb.ord = remove(mb.ord, m)
		mb.stats.Expired++
		m.state = abandoned
	case inProgress:
		// Still in progress: the process is busy with it until it replies.
		m.state = abandoned
	}
	mb.mu.Unlock()
	m.cancel(fmt.Errorf("caller gave up: %w", why))
	select {
	case r := <-m.reply: // the reply or the failure won the race
		return r.v, r.err
	default:
	}
	return nil, fmt.Errorf("%s: call %v: %w", mb.name, body, why)
}

// Cast sends body on the ordinary lane without waiting.
func (mb *Mailbox) Cast(body any) error {
	return mb.enqueue(mb.newMessage(KindCast, body, time.Time{}))
}

// Control sends a control message. It is received before every queued
// call and cast, after earlier control messages. ControlAbort also cancels
// the context of the message in progress at once.
func (mb *Mailbox) Control(kind ControlKind, body any) error {
	m := mb.newMessage(KindControl, body, time.Time{})
	m.Control = kind
	return mb.enqueue(m)
}

// Abort sends a ControlAbort, like Control, and returns the message it
// cancelled (ok false if the process was idle).
func (mb *Mailbox) Abort(body any) (aborted InFlight, ok bool, err error) {
	m := mb.newMessage(KindControl, body, time.Time{})
	m.Control = ControlAbort
	cur, err := mb.push(m)
	if err != nil || cur == nil {
		return InFlight{}, false, err
	}
	return InFlight{Kind: cur.Kind, Control: cur.Control, Body: cur.Body, Sent: cur.Sent}, true, nil
}

func (mb *Mailbox) enqueue(m *Message) error {
	_, err := mb.push(m)
	return err
}

// push queues m in its lane and wakes the process. For a ControlAbort it
// cancels the message in progress and returns it (nil if none).
func (mb *Mailbox) push(m *Message) (aborted *Message, err error) {
	mb.mu.Lock()
	if mb.shutErr != nil {
		mb.stats.Rejected++
		err := mb.shutErr
		mb.mu.Unlock()
		return nil, fmt.Errorf("%s: %s: %w", mb.name, m.Kind, err)
	}
	if m.Kind == KindControl {
		if len(mb.ctl) >= mb.ctlCapacity {
			mb.stats.Rejected++
			mb.mu.Unlock()
			return nil, fmt.Errorf("%s: control lane (%d): %w", mb.name, mb.ctlCapacity, ErrMailboxFull)
		}
		mb.ctl = append(mb.ctl, m)
		if m.Control == ControlAbort && mb.current != nil {
			aborted = mb.current
			aborted.cancel(fmt.Errorf("%s: %w by a control message (%v)", mb.name, ErrAborted, m.Body))
		}
	} else {
		if len(mb.ord) >= mb.capacity {
			mb.stats.Rejected++
			mb.mu.Unlock()
			return nil, fmt.Errorf("%s: %s: ordinary lane (%d): %w", mb.name, m.Kind, mb.capacity, ErrMailboxFull)
		}
		mb.ord = append(mb.ord, m)
	}
	mb.mu.Unlock()
	select {
	case mb.wake <- struct{}{}:
	default:
	}
	return aborted, nil
}

// TryReceive is Receive without waiting: ok is false if both lanes are
// empty. With Notify it lets a process wait for messages and for its own
// timers (a poll tick) in one select.
func (mb *Mailbox) TryReceive() (m *Message, ok bool) {
	mb.mu.Lock()
	if prev := mb.current; prev != nil {
		mb.mu.Unlock()
		prev.Done()
		mb.mu.Lock()
	}
	defer mb.mu.Unlock()
	switch {
	case len(mb.ctl) > 0:
		m, mb.ctl = mb.ctl[0], mb.ctl[1:]
	case len(mb.ord) > 0:
		m, mb.ord = mb.ord[0], mb.ord[1:]
	default:
		return nil, false
	}
	m.state = inProgress
	mb.current = m
	mb.stats.Received++
	return m, true
}

// Notify returns a channel that receives a value when messages may be
// waiting; drain with TryReceive until it reports none. Wake-ups are
// coalesced. Only the process that owns the mailbox should use it.
func (mb *Mailbox) Notify() <-chan struct{} { return mb.wake }

// Receive returns the next message for the process: the oldest control
// message if any, else the oldest call or cast. It ends the previous
// message's handling (see Done) and waits until a message arrives or ctx
// ends.
func (mb *Mailbox) Receive(ctx context.Context) (*Message, error) {
	for {
		if m, ok := mb.TryReceive(); ok {
			return m, nil
		}
		select {
		case <-mb.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Depth returns the number of queued messages in both lanes.
func (mb *Mailbox) Depth() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return len(mb.ctl) + len(mb.ord)
}

// InFlight describes the message in progress.
type InFlight struct {
	Kind    MessageKind
	Control ControlKind
	Body    any
	Sent    time.Time
}

// InProgress returns the message being handled, if any.
func (mb *Mailbox) InProgress() (InFlight, bool) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.current == nil {
		return InFlight{}, false
	}
	m := mb.current
	return InFlight{Kind: m.Kind, Control: m.Control, Body: m.Body, Sent: m.Sent}, true
}

// Stats returns the mailbox's counters.
func (mb *Mailbox) Stats() MailboxStats {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	st := mb.stats
	st.Depth = len(mb.ctl) + len(mb.ord)
	return st
}

// FailQueued fails every queued call with err (wrapped with the mailbox's
// name and the call) and drops queued casts, leaving control messages and the
// message in progress alone; the mailbox stays open. A process uses it when
// what the requests were queued for is gone without the process exiting (a
// device's connection dropped): nothing is replayed to the next connection.
// It returns how many messages it failed or dropped.
func (mb *Mailbox) FailQueued(err error) int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	n := len(mb.ord)
	for _, m := range mb.ord {
		if m.Kind == KindCall {
			m.reply <- reply{err: fmt.Errorf("%s: call %v: %w", mb.name, m.Body, err)}
		}
		m.state = failed
		m.cancel(err)
	}
	clear(mb.ord)
	mb.ord = mb.ord[:0]
	mb.stats.Dropped += uint64(n)
	return n
}

// open lets messages in again; the supervisor calls it when the process starts.
func (mb *Mailbox) open() {
	mb.mu.Lock()
	mb.shutErr = nil
	mb.mu.Unlock()
}

// shut fails every queued and in-progress call with err, drops queued
// casts and control messages, and refuses new messages until open.
func (mb *Mailbox) shut(err error) {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if mb.shutErr != nil && errors.Is(mb.shutErr, ErrStopped) {
		return
	}
	mb.shutErr = err
	fail := func(m *Message) {
		if m.Kind == KindCall && (m.state == queued || m.state == inProgress) {
			m.reply <- reply{err: fmt.Errorf("%s: call %v: %w", mb.name, m.Body, err)}
		}
		m.state = failed
		m.cancel(err)
	}
	for _, m := range mb.ctl {
		fail(m)
	}
	for _, m := range mb.ord {
		fail(m)
	}
	mb.stats.Dropped += uint64(len(mb.ctl) + len(mb.ord))
	mb.ctl, mb.ord = nil, nil
	if mb.current != nil {
		fail(mb.current)
		mb.current = nil
	}
}

func remove(q []*Message, m *Message) []*Message {
	for i, x := range q {
		if x == m {
			return append(q[:i:i], q[i+1:]...)
		}
	}
	return q
}
