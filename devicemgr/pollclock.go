package devicemgr

import (
	"sync"
	"sync/atomic"
	"time"
)

// Poll scheduling is shared: instead of a timer per device, a Manager runs one
// scheduler goroutine per poll period (pollClock), shared by every device group
// with that period. The period is cut into slots, every group sits in the least
// populated slot, and at each slot's tick the scheduler hands each of its
// groups a "poll now" token: it stores the tick in the group's pollTurn (only if
// none is pending) and makes a non-blocking send on the device's 1-buffered wake
// channel. The device's own goroutine does the I/O. The scheduler never blocks
// on a device, so a hung or slow device cannot delay any other device's poll; a
// device still busy when its next tick comes has overrun (counted by the
// device), and the tick is skipped, never queued.
//
// Slots spread a period's polls over the period (a burst of a thousand
// simultaneous round trips would queue in the kernel and in the hub, and show
// as latency), and a slot's groups are woken together: one wake-up of the
// scheduler hands out all their tokens, and the devices' goroutines then run
// back to back rather than each waking a thread of its own. Each wake-up of an
// idle process costs more CPU than the poll it starts, so a period has as few
// slots as keeps each slot's burst small: one slot per groupsPerSlot groups,
// in powers of two, at most maxSlots and never closer than slotStep. Twenty
// devices at 10 Hz are polled together; a thousand in 16 slots of about 60
// (the bare poller of bench/floor spends 4.0–4.7 µs of CPU per sample so,
// 5.0–5.2 with 32 slots, 6.3–6.4 with 64 and 5.1–5.7 with a ticker per
// connection, alternating on the same simulator).
const (
	slotStep      = time.Millisecond
	maxSlots      = 64
	groupsPerSlot = 48
)

// pollClock holds the schedulers of one Manager, one per period in use. A
// scheduler starts with its period's first subscriber and stops (and is waited
// for) when its last one leaves, so an idle Manager runs no goroutine.
type pollClock struct {
	mu      sync.Mutex
	periods map[time.Duration]*periodScheduler
}

// periodScheduler is the goroutine that ticks the slots of one period.
type periodScheduler struct {
	period time.Duration
	base   time.Time // tick k is at base + at(k); monotonic
	stop   chan struct{}
	done   chan struct{}

	mu    sync.Mutex // guards slots, next and members
	slots [][]*pollTurn
	// next is the next tick to hand out (ticks before it are done).
	next int64
	// members counts subscribers; guarded by pollClock.mu.
	members int
}

// PollSlots returns the number of slots a poll period is cut into when groups
// poll groups (devices, for devices with one period each) share it: one per 48
// groups, in powers of two, at least 1, at most 64 and one per millisecond of
// the period. The groups of a slot are polled together.
func PollSlots(period time.Duration, groups int) int { return slotsFor(period, groups) }

// slotsFor is PollSlots.
func slotsFor(period time.Duration, groups int) int {
	limit := max(1, min(int(period/slotStep), maxSlots))
	n := 1
	for n*2 <= limit && n*2*groupsPerSlot <= groups {
		n *= 2
	}
	return n
}

// pollTurn is one poll group's subscription: the pending token and where to
// signal it.
type pollTurn struct {
	s    *periodScheduler
	slot int
	// due is the pending tick as nanoseconds since s.base plus one; 0 when no
	// token is pending. The scheduler sets it only from 0, the device clears it
	// once it has served the tick.
	due  atomic.Int64
	wake chan struct{} // the device's, 1-buffered
	// last is the tick last offered (0: none yet); guarded by s.mu.
	last int64
}

// subscribe adds a poll group of the given period; its device is woken through
// wake (1-buffered, shared by the device's groups). Call unsubscribe when done.
func (c *pollClock) subscribe(period time.Duration, wake chan struct{}) *pollTurn {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.periods[period]
	if s == nil {
		if c.periods == nil {
			c.periods = make(map[time.Duration]*periodScheduler)
		}
		s = &periodScheduler{
			period: period, base: time.Now(),
			stop: make(chan struct{}), done: make(chan struct{}),
			slots: make([][]*pollTurn, 1),
			next:  1, // tick 0 is the start: each device polls at once when it subscribes
		}
		c.periods[period] = s
		go s.run()
	}
	s.members++
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := slotsFor(period, s.members); n > len(s.slots) {
		s.reslot(n)
	}
	// The least populated slot; among those, the one whose next tick is
	// farthest off (the slot that just ticked), so that the poll the device
	// makes at once on connecting is not followed by its first tick right away.
	n := int64(len(s.slots))
	cur := s.latest(time.Since(s.base)) % n
	best, bestAge := 0, n
	for i := range s.slots {
		age := (cur - int64(i) + n) % n // ticks since slot i last ticked
		if len(s.slots[i]) < len(s.slots[best]) || len(s.slots[i]) == len(s.slots[best]) && age < bestAge {
			best, bestAge = i, age
		}
	}
	// The device polls at once on subscribing: that counts as its last tick,
	// so that a reslot moving it to a slot that ticks soon does not make it
	// poll twice in its first period.
	t := &pollTurn{s: s, slot: best, wake: wake, last: int64(time.Since(s.base)) + 1}
	s.slots[best] = append(s.slots[best], t)
	return t
}

// reslot spreads the period's groups over n slots (more than it has): as
// many groups in each, in the order they were in. Ticks are then counted in
// the new slots from the current one on. s.mu held.
func (s *periodScheduler) reslot(n int) {
	var turns []*pollTurn
	for _, slot := range s.slots {
		turns = append(turns, slot...)
	}
	s.slots = make([][]*pollTurn, n)
	for i, t := range turns {
		t.slot = i % n
		s.slots[t.slot] = append(s.slots[t.slot], t)
	}
	s.next = s.latest(time.Since(s.base)) + 1
}

// unsubscribe removes a poll group; the last one out stops the period's
// scheduler and waits for it to end.
func (c *pollClock) unsubscribe(t *pollTurn) {
	s := t.s
	c.mu.Lock()
	s.mu.Lock()
	slot := s.slots[t.slot]
	for i, o := range slot {
		if o == t {
			slot[i] = slot[len(slot)-1]
			slot[len(slot)-1] = nil
			s.slots[t.slot] = slot[:len(slot)-1]
			break
		}
	}
	s.mu.Unlock()
	s.members--
	last := s.members == 0
	if last {
		delete(c.periods, s.period)
		close(s.stop)
	}
	c.mu.Unlock()
	if last {
		<-s.done
	}
}

// at returns the time of tick k relative to base: slot k%n of round k/n, exact
// for every period (no drift from rounding period/n).
func (s *periodScheduler) at(k int64) time.Duration {
	n := int64(len(s.slots))
	return time.Duration(k/n)*s.period + time.Duration((k%n)*int64(s.period)/n)
}

// latest returns the index of the last tick at or before elapsed.
func (s *periodScheduler) latest(elapsed time.Duration) int64 {
	n := int64(len(s.slots))
	round := int64(elapsed / s.period)
	r := int64(elapsed % s.period)
	// The largest j with at(j) = ⌊j·period/n⌋ ≤ r, i.e. j·period < (r+1)·n.
	j := ((r+1)*n - 1) / int64(s.period)
	return round*n + j
}

func (s *periodScheduler) run() {
	defer close(s.done)
	s.mu.Lock()
	timer := time.NewTimer(s.at(s.next))
	s.mu.Unlock()
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-timer.C:
		}
		s.mu.Lock()
		n := int64(len(s.slots))
		cur := s.latest(time.Since(s.base))
		from := max(s.next, cur-n+1) // late by a whole round or more: each slot once
		for k := from; k <= cur; k++ {
			tick := int64(s.at(k)) + 1
			for _, t := range s.slots[k%n] {
				t.offer(tick)
			}
		}
		s.next = max(cur+1, s.next)
		wait := s.at(s.next) - time.Since(s.base)
		s.mu.Unlock()
		// After a reslot the timer may fire early (nothing is due yet: it is
		// set again) or late by up to a slot of the old layout.
		timer.Reset(wait)
	}
}

// offer hands the group a token for tick unless one is still pending or the
// group had one less than three quarters of a period before; it never
// blocks. s.mu held.
func (t *pollTurn) offer(tick int64) {
	// A group a reslot moved to another slot may meet that slot's tick less
	// than a period after its own: it skips it rather than poll twice in one
	// period. (In a slot of its own the ticks are a period apart.)
	if t.last != 0 && tick-t.last < int64(t.s.period)*3/4 {
		return
	}
	t.last = tick
	if t.due.CompareAndSwap(0, tick) {
		select {
		case t.wake <- struct{}{}:
		default: // already signalled: the device will look at every group
		}
	}
}

// now returns the current time in the unit of due.
func (t *pollTurn) now() int64 { return int64(time.Since(t.s.base)) + 1 }

// pending returns the pending tick (0: none).
func (t *pollTurn) pending() int64 { return t.due.Load() }

// served clears the token of the tick just polled and reports whether that
// poll overran: it ended a period or more after its tick, so the group's next
// slot is missed (skipped, not queued).
func (t *pollTurn) served(tick int64) (overran bool) {
	t.due.Store(0)
	return t.now()-tick >= int64(t.s.period)
}
