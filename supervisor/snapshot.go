package supervisor

import (
	"fmt"
	"time"
)

// State is the state of one supervised process.
type State uint8

// Process states.
const (
	Starting State = iota + 1
	Running
	BackingOff // waiting for a restart; Node.NextRestart says when
	Stopping
	Stopped
	Leaked // did not exit within its shutdown timeout; never restarted beside itself
)

var stateNames = [...]string{"", "starting", "running", "backoff", "stopping", "stopped", "leaked"}

// String returns the state's lower-case name.
func (s State) String() string {
	if s != 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Node is a snapshot of one supervisor or worker and, for a supervisor, its children.
type Node struct {
	ID          string
	Kind        string // "supervisor" or "worker"
	Strategy    string // "one_for_one", "one_for_all", "rest_for_one"; empty for workers
	Restart     string // "permanent", "transient", "temporary"
	State       State
	Restarts    int
	LastExit    string // error text, or panic value with stack; empty if it never exited
	Started     time.Time
	NextRestart time.Time
	// MailboxDepth is the number of queued messages, for processes with a mailbox.
	MailboxDepth int
	Children     []Node

	// Added by the supervisor package; the fields above are the API contract.

	// Significant is set for significant children (see AutoShutdown).
	Significant bool
	// Uptime is how long the process has been running; zero unless Running.
	Uptime time.Duration
	// InProgress describes the message being handled, for processes with
	// a mailbox; empty when idle.
	InProgress string
	// Status is what the process last said it is doing (ReportStatus),
	// while it runs; empty otherwise. A process that handles failures
	// inside itself (a device reconnecting) is Running with a Status that
	// says so.
	Status string
}

// Snapshot returns the tree below and including s. It is safe from any
// goroutine and never waits for a child or for the supervisor's loop: it
// reads state the loop publishes under a short lock.
func (s *Supervisor) Snapshot() Node {
	s.mu.Lock()
	n := Node{
		ID:       s.id,
		Kind:     "supervisor",
		Strategy: s.opts.Strategy.String(),
		Restart:  Permanent.String(),
		State:    s.state,
		LastExit: s.lastExit,
		Started:  s.started,
	}
	if s.state != Running {
		n.Started = time.Time{}
	}
	kids := make([]Node, 0, len(s.children))
	subs := make([]*Supervisor, 0, len(s.children))
	mbs := make([]*Mailbox, 0, len(s.children))
	for _, c := range s.children {
		st, last := c.state, c.lastExit
		if st == Leaked && c.inst != nil && c.inst.exited() {
			// Ended while its supervisor was not running to account for it.
			st, last = Stopped, "shutdown (after leaking)"
		}
		kids = append(kids, Node{
			ID:          c.spec.ID,
			Kind:        "worker",
			Restart:     c.spec.Restart.String(),
			Significant: c.spec.Significant,
			State:       st,
			Restarts:    c.restarts,
			LastExit:    last,
			Started:     c.started,
			NextRestart: c.nextShown,
		})
		if st == Running && c.inst != nil {
			kids[len(kids)-1].Status = c.inst.status
		}
		subs = append(subs, c.sub)
		mbs = append(mbs, c.spec.Mailbox)
	}
	s.mu.Unlock()

	// Outside s.mu: nested supervisors and mailboxes have their own locks.
	now := time.Now()
	for i := range kids {
		k := &kids[i]
		if k.State == Running {
			k.Uptime = now.Sub(k.Started)
		} else {
			k.Started = time.Time{}
		}
		if sub := subs[i]; sub != nil {
			sn := sub.Snapshot()
			k.Kind = sn.Kind
			k.Strategy = sn.Strategy
			k.Children = sn.Children
		}
		if mb := mbs[i]; mb != nil {
			k.MailboxDepth = mb.Depth()
			if f, ok := mb.InProgress(); ok {
				k.InProgress = f.String()
			}
		}
	}
	if n.State == Running {
		n.Uptime = now.Sub(n.Started)
	}
	n.Children = kids
	return n
}

// String describes the message, e.g. `call "MEAS:VOLT?" sent 12:00:01.5`.
func (f InFlight) String() string {
	what := f.Kind.String()
	if f.Kind == KindControl {
		what += " " + f.Control.String()
	}
	body := fmt.Sprintf("%v", f.Body)
	if len(body) > 80 {
		body = body[:77] + "..."
	}
	return fmt.Sprintf("%s %q sent %s", what, body, f.Sent.Format("15:04:05.000"))
}

// Find returns the descendant of n reached by following child IDs, e.g.
// n.Find("devices", "psu1"). With no IDs it returns n.
func (n Node) Find(ids ...string) (Node, bool) {
	cur := n
	for _, id := range ids {
		found := false
		for _, c := range cur.Children {
			if c.ID == id {
				cur, found = c, true
				break
			}
		}
		if !found {
			return Node{}, false
		}
	}
	return cur, true
}
