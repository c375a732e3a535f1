package supervisor

import "time"

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
}
