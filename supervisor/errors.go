package supervisor

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrAlreadyRunning: Serve was called on a supervisor that is running.
	ErrAlreadyRunning = errors.New("supervisor already running")
	// ErrNotRunning: the operation needs a running supervisor.
	ErrNotRunning = errors.New("supervisor not running")
	// ErrDuplicate: a child with that ID (or a mailbox with that name) exists.
	ErrDuplicate = errors.New("duplicate id")
	// ErrTooManyChildren: Options.MaxChildren is reached.
	ErrTooManyChildren = errors.New("too many children")
	// ErrNotFound: no child has that ID.
	ErrNotFound = errors.New("no such child")
	// ErrLeaked: a child's goroutine did not exit after its shutdown
	// timeout and kill hook.
	ErrLeaked = errors.New("child goroutine leaked")
	// ErrStartTimeout: a child did not report ready within StartTimeout.
	ErrStartTimeout = errors.New("not ready in time")
	// ErrIntensity: restart intensity exceeded; an *EscalationError is it.
	ErrIntensity = errors.New("restart intensity exceeded")
	// ErrRestarted: the process exited and is being restarted; the request
	// was not (and will not be) handled by the new incarnation.
	ErrRestarted = errors.New("process restarted; request dropped, not replayed")
	// ErrStopped: the process stopped or is not running.
	ErrStopped = errors.New("process stopped")
	// ErrMailboxFull: the ordinary lane is at capacity (policy: reject newest).
	ErrMailboxFull = errors.New("mailbox full")
	// ErrAborted: a ControlAbort cancelled the message in progress (the
	// cause of its Context).
	ErrAborted = errors.New("aborted")
	// ErrCallTimeout: a call got no reply within its timeout.
	ErrCallTimeout = errors.New("call timed out")
	// ErrClosed: the subscription or mailbox was closed.
	ErrClosed = errors.New("closed")
)

// PanicError is the exit reason of a child that panicked.
type PanicError struct {
	Value any
	Stack []byte // debug.Stack() at the recovery point
}

// Error returns "panic: <value>"; the stack is in Stack and in Node.LastExit.
func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// EscalationError is returned by Serve when restart intensity was exceeded:
// the supervisor has stopped its children and fails to its parent.
type EscalationError struct {
	Supervisor  string
	MaxRestarts int
	MaxTime     time.Duration
	Child       string // the child whose failure tipped the balance
	Cause       error  // its exit reason; nil for a normal exit of a permanent child
}

// Error names the supervisor, the limit and the last failure.
func (e *EscalationError) Error() string {
	cause := "normal exit"
	if e.Cause != nil {
		cause = e.Cause.Error()
	}
	return fmt.Sprintf("supervisor %q: restart intensity exceeded (more than %d restarts in %s); last: child %q: %s",
		e.Supervisor, e.MaxRestarts, e.MaxTime, e.Child, cause)
}

// Unwrap returns the cause.
func (e *EscalationError) Unwrap() error { return e.Cause }

// Is reports true for ErrIntensity.
func (e *EscalationError) Is(target error) bool { return target == ErrIntensity }
