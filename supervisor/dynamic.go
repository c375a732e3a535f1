package supervisor

import (
	"fmt"
	"time"
)

// Add adds a child after the existing ones. Before Serve it is only
// recorded; while Serve runs the child is started at once and Add returns
// once it is ready or has failed (a failed start is handled like any
// abnormal exit: see the restart type). Add returns an error only for an
// invalid or duplicate spec or when MaxChildren is reached. While Serve
// runs, Add waits for the supervisor's goroutine, which may be busy
// starting or stopping another child.
func (s *Supervisor) Add(spec ChildSpec) error {
	if err := spec.validate(); err != nil {
		return fmt.Errorf("supervisor %q: add: %w", s.id, err)
	}
	if sub, ok := spec.Service.(*Supervisor); ok {
		if p := sub.parentOf(); p != nil && p != s {
			return fmt.Errorf("supervisor %q: add %q: already supervised by %q", s.id, spec.ID, p.id)
		}
		for p := s; p != nil; p = p.parentOf() {
			if p == sub {
				return fmt.Errorf("supervisor %q: add %q: would supervise its own ancestor", s.id, spec.ID)
			}
		}
	}
	for {
		s.mu.Lock()
		r := s.run
		if r == nil {
			err := s.addLocked(&spec)
			s.mu.Unlock()
			if err == nil {
				s.emit(Event{Kind: EventAdded, Child: spec.ID})
			}
			return err
		}
		s.mu.Unlock()
		if ok, err := s.send(r, request{add: &spec}); ok {
			return err
		}
	}
}

// Remove stops the child (as on shutdown: cancel, wait Shutdown, Kill, wait
// KillWait) and forgets it. If the child's goroutine does not exit, Remove
// returns an error wrapping ErrLeaked; the child stays listed as leaked,
// so its ID cannot be reused, until the goroutine ends.
func (s *Supervisor) Remove(id string) error {
	for {
		s.mu.Lock()
		r := s.run
		if r == nil {
			c := s.findLocked(id)
			if c == nil {
				s.mu.Unlock()
				return fmt.Errorf("supervisor %q: remove %q: %w", s.id, id, ErrNotFound)
			}
			if c.alive() {
				c.removing = true
				s.mu.Unlock()
				return fmt.Errorf("supervisor %q: remove %q: %w", s.id, id, ErrLeaked)
			}
			s.dropLocked(c)
			s.mu.Unlock()
			s.emit(Event{Kind: EventRemoved, Child: id})
			return nil
		}
		s.mu.Unlock()
		if ok, err := s.send(r, request{remove: id}); ok {
			return err
		}
	}
}

// Restart stops the child as Remove does and starts it again at once,
// outside restart intensity and backoff, whatever its restart type and the
// strategy (OTP's terminate_child then restart_child): an operator's
// "reconnect now". Queued calls fail with ErrRestarted. It returns once the
// child is ready or has failed to start, ErrNotRunning if the supervisor
// is not running, and ErrLeaked if the old goroutine would not exit (the
// child then starts as soon as it does).
func (s *Supervisor) Restart(id string) error {
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r == nil {
		return fmt.Errorf("supervisor %q: restart %q: %w", s.id, id, ErrNotRunning)
	}
	if ok, err := s.send(r, request{restart: id}); ok {
		return err
	}
	return fmt.Errorf("supervisor %q: restart %q: %w", s.id, id, ErrNotRunning)
}

// RestartPath restarts the descendant reached by following ids, as in
// Node.Find: RestartPath("devices", "psu1") asks the child supervisor
// "devices" to Restart "psu1". With one id it is Restart. It returns an
// error wrapping ErrNotFound if a supervisor on the way or the last child
// does not exist, and Restart's errors otherwise.
func (s *Supervisor) RestartPath(ids ...string) error {
	if len(ids) == 0 {
		return fmt.Errorf("supervisor %q: restart: empty path: %w", s.id, ErrNotFound)
	}
	cur := s
	for _, id := range ids[:len(ids)-1] {
		cur.mu.Lock()
		c := cur.findLocked(id)
		var next *Supervisor
		if c != nil {
			next, _ = c.spec.Service.(*Supervisor)
		}
		cur.mu.Unlock()
		if next == nil {
			return fmt.Errorf("supervisor %q: restart: no supervisor %q: %w", cur.id, id, ErrNotFound)
		}
		cur = next
	}
	return cur.Restart(ids[len(ids)-1])
}

// send delivers a request to the running loop; ok is false if that run
// ended first, in which case the caller retries against the new state.
func (s *Supervisor) send(r *runState, req request) (ok bool, err error) {
	req.reply = make(chan error, 1)
	select {
	case r.reqs <- req:
		return true, <-req.reply
	case <-r.done:
		return false, nil
	}
}

func (s *Supervisor) handle(req request) error {
	if req.add != nil {
		s.mu.Lock()
		err := s.addLocked(req.add)
		var c *child
		if err == nil {
			c = s.children[len(s.children)-1]
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
		s.emit(Event{Kind: EventAdded, Child: c.spec.ID})
		s.start(c)
		return nil
	}
	if req.restart != "" {
		return s.restart(req.restart)
	}
	s.mu.Lock()
	c := s.findLocked(req.remove)
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("supervisor %q: remove %q: %w", s.id, req.remove, ErrNotFound)
	}
	c.pending = false
	s.stop(c, ErrStopped)
	if c.alive() {
		s.mu.Lock()
		c.removing = true
		s.mu.Unlock()
		return fmt.Errorf("supervisor %q: remove %q: %w", s.id, req.remove, ErrLeaked)
	}
	s.mu.Lock()
	s.dropLocked(c)
	s.mu.Unlock()
	s.emit(Event{Kind: EventRemoved, Child: c.spec.ID})
	return nil
}

func (s *Supervisor) addLocked(spec *ChildSpec) error {
	if s.findLocked(spec.ID) != nil {
		return fmt.Errorf("supervisor %q: add %q: %w", s.id, spec.ID, ErrDuplicate)
	}
	if s.opts.MaxChildren > 0 && len(s.children) >= s.opts.MaxChildren {
		return fmt.Errorf("supervisor %q: add %q: %w (%d)", s.id, spec.ID, ErrTooManyChildren, s.opts.MaxChildren)
	}
	if spec.Significant && spec.Restart == Permanent {
		return fmt.Errorf("supervisor %q: add %q: a significant child must be transient or temporary", s.id, spec.ID)
	}
	if spec.Name != "" && spec.Mailbox != nil && s.opts.Registry != nil {
		if err := s.opts.Registry.register(spec.Name, spec.Mailbox); err != nil {
			return fmt.Errorf("supervisor %q: add %q: %w", s.id, spec.ID, err)
		}
	}
	c := newChild(*spec)
	if sub, ok := spec.Service.(*Supervisor); ok {
		sub.mu.Lock()
		sub.parent = s
		sub.mu.Unlock()
	}
	s.children = append(s.children, c)
	return nil
}

func (s *Supervisor) parentOf() *Supervisor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parent
}

func (s *Supervisor) findLocked(id string) *child {
	for _, c := range s.children {
		if c.spec.ID == id {
			return c
		}
	}
	return nil
}

func (s *Supervisor) dropLocked(c *child) {
	for i, x := range s.children {
		if x == c {
			s.children = append(s.children[:i:i], s.children[i+1:]...)
			break
		}
	}
	c.removed = true
	c.pending = false
	if c.spec.Mailbox != nil {
		c.spec.Mailbox.shut(fmt.Errorf("process %q: %w", c.spec.ID, ErrStopped))
	}
	if c.spec.Name != "" && c.spec.Mailbox != nil && s.opts.Registry != nil {
		s.opts.Registry.unregister(c.spec.Name, c.spec.Mailbox)
	}
	if sub, ok := c.spec.Service.(*Supervisor); ok {
		sub.mu.Lock()
		if sub.parent == s {
			sub.parent = nil
		}
		sub.mu.Unlock()
	}
}

func (s *Supervisor) restart(id string) error {
	s.mu.Lock()
	c := s.findLocked(id)
	s.mu.Unlock()
	if c == nil || c.removing {
		return fmt.Errorf("supervisor %q: restart %q: %w", s.id, id, ErrNotFound)
	}
	s.stop(c, ErrRestarted)
	c.failures = 0
	c.async = false
	c.pending = true
	c.next = time.Now()
	if c.alive() {
		return fmt.Errorf("supervisor %q: restart %q: %w", s.id, id, ErrLeaked)
	}
	s.start(c)
	return nil
}
