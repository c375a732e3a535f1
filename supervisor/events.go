package supervisor

import (
	"context"
	"sync"
	"time"

	"github.com/switchyard/switchyard/feed"
)

// EventKind says what happened.
type EventKind uint8

// Event kinds.
const (
	EventStarting         EventKind = iota + 1 // a supervisor's Serve began
	EventStopped                               // a supervisor returned, or a child was stopped by its supervisor
	EventAdded                                 // a child was added
	EventRemoved                               // a child was removed
	EventStarted                               // a child is ready
	EventExited                                // a child exited by itself (Reason says how)
	EventRestartScheduled                      // a restart is due at NextRestart
	EventLeaked                                // a child's goroutine did not exit
	EventAutoShutdown                          // significant children exited; the supervisor stops
	EventStatus                                // a running child reported a new status (Reason; see ReportStatus)
	EventReconfigured                          // the configuration changed at run time (Reason says how; see Reconfigured)
)

var eventNames = [...]string{"", "starting", "stopped", "added", "removed", "started", "exited", "restart_scheduled", "leaked", "auto_shutdown", "status", "reconfigured"}

// String returns the kind's lower-case name.
func (k EventKind) String() string {
	if k != 0 && int(k) < len(eventNames) {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one lifecycle change in a supervision tree.
type Event struct {
	// Seq numbers the events of one supervisor's stream from 1 without
	// gaps; a gap seen by a subscriber is the events it lost (Dropped).
	Seq  uint64
	Time time.Time
	// Path is the supervisor's id, prefixed by its ancestors' ids and "/"
	// for events coming up from nested supervisors.
	Path string
	// Child is the child's id; empty for events about the supervisor itself.
	Child       string
	Kind        EventKind
	Reason      string // exit reason (with the stack for panics), error, or the new status
	Restarts    int
	NextRestart time.Time
	// Detail is what an EventReconfigured carries besides Reason, for
	// watchers that know its type; nil for other kinds. Shared: read only.
	Detail any
}

// DefaultEventBuffer is the buffer of a subscription asked with buffer <= 0.
const DefaultEventBuffer = 256

// hub fans events out to subscriptions. Publishing never blocks: each
// subscription is a bounded feed.Queue that drops its oldest event when full.
type hub struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*Subscription]struct{}
}

// Subscription receives a supervisor's events, and those of the
// supervisors below it. It holds up to its buffer of events; when the
// reader falls behind, the oldest are dropped and counted. Events are
// handed over on the reader's goroutine (Next), never on the supervisor's.
type Subscription struct {
	h   *hub
	q   *feed.Queue[Event]
	one []Event // Next's buffer
}

// Events subscribes to the events of s and its descendants, keeping at most
// buffer undelivered events (DefaultEventBuffer if buffer <= 0).
// Close the subscription when done.
func (s *Supervisor) Events(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = DefaultEventBuffer
	}
	sub := &Subscription{h: &s.hub, q: feed.New(feed.Options[Event]{Policy: feed.DropOldest, Capacity: buffer})}
	s.hub.mu.Lock()
	if s.hub.subs == nil {
		s.hub.subs = make(map[*Subscription]struct{})
	}
	s.hub.subs[sub] = struct{}{}
	s.hub.mu.Unlock()
	return sub
}

// Next returns the oldest undelivered event, waiting for one until ctx
// ends (ctx.Err()) or the subscription is closed (ErrClosed). A
// subscription has one reader; subscribe again for another.
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		sub.one = sub.q.Drain(sub.one[:0], 1)
		if len(sub.one) == 1 {
			ev := sub.one[0]
			sub.one[0] = Event{}
			return ev, nil
		}
		if sub.q.Err() != nil {
			return Event{}, ErrClosed
		}
		select {
		case <-sub.q.Ready():
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Dropped returns how many events were dropped because the buffer was full.
func (sub *Subscription) Dropped() uint64 { return sub.q.Dropped() }

// Close ends the subscription; Next then returns ErrClosed once the events
// already queued are read. Idempotent.
func (sub *Subscription) Close() {
	sub.h.mu.Lock()
	delete(sub.h.subs, sub)
	sub.h.mu.Unlock()
	sub.q.Close()
}

func (sub *Subscription) push(ev Event) { sub.q.Offer(ev) }

// Reconfigured publishes an EventReconfigured about s itself: the
// configuration of the tree changed while it ran (a reload added, removed or
// replaced children). reason says how in one line; detail is for watchers
// that know its type (the server's: a *config.Reload). It never blocks.
func (s *Supervisor) Reconfigured(reason string, detail any) {
	s.emit(Event{Kind: EventReconfigured, Reason: reason, Detail: detail})
}

// emit stamps ev with this supervisor's path and time and publishes it here
// and in every ancestor.
func (s *Supervisor) emit(ev Event) {
	ev.Time = time.Now()
	ev.Path = s.id
	for cur := s; cur != nil; {
		cur.hub.mu.Lock()
		cur.hub.seq++
		ev.Seq = cur.hub.seq
		for sub := range cur.hub.subs {
			sub.push(ev)
		}
		cur.hub.mu.Unlock()
		cur.mu.Lock()
		parent := cur.parent
		cur.mu.Unlock()
		if parent != nil {
			ev.Path = parent.id + "/" + ev.Path
		}
		cur = parent
	}
}
