package devicemgr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// State is the life-cycle state of a device's connection.
type State uint8

// Device states.
const (
	Connecting State = iota + 1 // dialling and identifying
	Connected                   // polling
	Backoff                     // failed; waiting for the next attempt
	Stopped                     // stopped by the server
)

var stateNames = [...]string{"", "CONNECTING", "CONNECTED", "BACKOFF", "STOPPED"}

// String returns the state's name as used in the API.
func (s State) String() string {
	if int(s) < len(stateNames) && s != 0 {
		return stateNames[s]
	}
	return "UNKNOWN"
}

// ChannelInfo describes one configured channel.
type ChannelInfo struct {
	Name   string
	Query  string        // empty for pushed channels
	Period time.Duration // zero for pushed channels
	Unit   string
}

// Info is a device's configuration and current state.
type Info struct {
	Name    string
	Address string
	Driver  string
	// Tags are the device's labels from the configuration, such as area: vacuum.
	Tags           map[string]string
	State          State
	Channels       []ChannelInfo
	LastError      string
	Restarts       int       // reconnections after a failure
	ConnectedSince time.Time // zero when not connected
	NextAttempt    time.Time // set only in Backoff
	Identity       string
	Commands       []string
	// CommandRoles maps a command that names a role to it; the API layer lets
	// only that role call it. Commands without a role are not listed.
	CommandRoles map[string]string
	// CommandSpecs are the named commands as configured, in order (shared and
	// never modified: read only).
	CommandSpecs []CommandSpec
	// Overruns counts poll cycles that took longer than their period (their
	// missed slots are skipped, not queued).
	Overruns uint64
	// OutOfStep counts the times a reply did not fit what was asked and the
	// device reconnected to resynchronise.
	OutOfStep uint64
	// ChangedAt is when State last changed.
	ChangedAt time.Time
	// Removed is set on the last Info of a device that was removed from the
	// configuration (State Stopped, LastError the reason): no change of it
	// follows.
	Removed bool
	// Node is, in a cluster, the node that owns the device; the device
	// manager leaves it empty (the cluster wiring fills it in).
	Node string
}

// Summary describes the connection in one line: the state in lower case, in
// backoff the error and the time of the next attempt, and the reconnections so
// far, e.g. "backoff: dial tcp 127.0.0.1:5025: connect: connection refused;
// next attempt 12:00:03.000; 3 reconnections", "connecting; 3 reconnections". A failed
// instrument is a state of its still-running device process, not a crash;
// this is what the process reports to its supervisor.
func (i Info) Summary() string {
	s := strings.ToLower(i.State.String())
	if i.State == Backoff && i.LastError != "" {
		s += ": " + i.LastError
	}
	if !i.NextAttempt.IsZero() {
		s += "; next attempt " + i.NextAttempt.Format("15:04:05.000")
	}
	switch {
	case i.Restarts == 1:
		s += "; 1 reconnection"
	case i.Restarts > 1:
		s += fmt.Sprintf("; %d reconnections", i.Restarts)
	}
	return s
}

// Command is a request to send to a device: a configured command by Name with Args,
// or a Raw line. A Raw line ending in '?' waits for a reply.
type Command struct {
	Name string
	Raw  string
	Args []string
	// Timeout bounds how long the caller waits (context.DeadlineExceeded
	// after it, the exchange itself still read to its end); longer than the
	// device's reply timeout, it also gives a slow command more time to
	// answer. Zero: no bound but the caller's context.
	Timeout time.Duration
}

// String describes the command for logs and the supervision tree, e.g.
// "set_voltage 24" or "raw \"MEAS:VOLT?\"".
func (c Command) String() string {
	if c.Name == "" {
		return "raw " + strconv.Quote(c.Raw)
	}
	if len(c.Args) == 0 {
		return c.Name
	}
	return c.Name + " " + strings.Join(c.Args, " ")
}

// Reply is what a device answered to a Command.
type Reply struct {
	Text   string
	Values []telemetry.Value
}

// Errors returned by the Manager. They are wrapped with detail; test with errors.Is.
var (
	ErrNotFound       = errors.New("no such device")
	ErrUnknownCommand = errors.New("unknown command")
	ErrBadArgument    = errors.New("bad command argument")
	ErrNotConnected   = errors.New("device not connected")
	ErrTimeout        = errors.New("device did not reply in time")
	// ErrBusy: the device's mailbox is full; the command was not queued.
	ErrBusy = errors.New("device busy: too many commands waiting")
	// ErrNotSettled: a write's read-back channel did not come within its
	// tolerance of the set value in time.
	ErrNotSettled = errors.New("read-back did not settle")
	// ErrBadReply: the instrument's reply to a command did not fit what was
	// asked (its reply format, the acknowledgement, ...); the device is then
	// out of step and reconnects.
	ErrBadReply = errors.New("the reply does not fit what was asked")
	// ErrInstrument: the instrument refused a command or reported an error
	// (see InstrumentError).
	ErrInstrument = errors.New("the instrument reported an error")
	// ErrExists: a device of that name is configured already.
	ErrExists = errors.New("device exists")
	// ErrDeviceRemoved: the device was removed from the configuration (by a
	// reload) while the command waited, or before it was sent.
	ErrDeviceRemoved = errors.New("device removed by reload")
)

// InstrumentError is an error the instrument itself reported for a command:
// an error reply (the model's error_reply, such as "ERR rate/volume not
// set") or a non-zero code from its error queue (error_query). It wraps
// ErrInstrument.
type InstrumentError struct {
	Device  string
	Command string // the command as called, e.g. "set_rate 5" or `raw "RATE 5"`
	Message string // the instrument's own text
}

// Error returns "device D, command C: the instrument reported: MESSAGE".
func (e *InstrumentError) Error() string {
	return fmt.Sprintf("device %s, command %s: the instrument reported: %s", e.Device, e.Command, e.Message)
}

// Unwrap returns ErrInstrument.
func (e *InstrumentError) Unwrap() error { return ErrInstrument }

// ErrorMetadata names the device, the command and the instrument's message
// (for the API's error details).
func (e *InstrumentError) ErrorMetadata() map[string]string {
	return map[string]string{"device": e.Device, "command": e.Command, "instrument_message": e.Message}
}
