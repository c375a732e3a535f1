package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/switchyard/switchyard/telemetry"
)

// Command is a device command as it travels to the device's owner: a
// configured command by Name with Args, or a Raw line.
type Command struct {
	Name    string        `json:"name,omitempty"`
	Raw     string        `json:"raw,omitempty"`
	Args    []string      `json:"args,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Reply is what the device answered.
type Reply struct {
	Text   string            `json:"text,omitempty"`
	Values []telemetry.Value `json:"values,omitempty"`
}

// Caller is who asked, carried to the owner for its checks and logs.
type Caller struct {
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
	// Node is the node the request came in on (set by the Router).
	Node string `json:"node,omitempty"`
}

// Executor runs commands and alarm actions on the devices this node owns
// (the device manager and the alarm engine).
type Executor interface {
	Send(ctx context.Context, device string, cmd Command, caller Caller) (Reply, error)
	// Abort cancels the command in progress and returns it ("" if idle).
	Abort(ctx context.Context, device, reason string, caller Caller) (string, error)
	// Alarm runs an operator action on one of the device's alarms and
	// returns the alarm after it, in the wiring's wire form.
	Alarm(ctx context.Context, device string, act AlarmAction, caller Caller) ([]byte, error)
}

// AlarmAction is an operator action on an alarm as it travels to the
// owner of its device, where the alarm is evaluated.
type AlarmAction struct {
	Op      AlarmOp `json:"op"`
	Channel string  `json:"channel"`
	// Who is who the action is recorded as (the caller's identity, or the
	// name they gave where authentication is off); Comment goes with it.
	Who     string `json:"who,omitempty"`
	Comment string `json:"comment,omitempty"`
	// UntilNs ends a shelf (0: unshelve).
	UntilNs int64 `json:"until_ns,omitempty"`
	// Limits are the new limits, in the wiring's wire form.
	Limits []byte `json:"limits,omitempty"`
}

// AlarmOp names an alarm action.
type AlarmOp string

// Alarm actions.
const (
	AlarmAck       AlarmOp = "ack"
	AlarmShelve    AlarmOp = "shelve"
	AlarmSetLimits AlarmOp = "set_limits"
	AlarmGet       AlarmOp = "get" // read the alarm and its limits; changes nothing
)

// FailoverError says a device has no owner that can take the request now: its
// owner died or was cut off and no other node has taken it over yet, or it is
// being handed over. Nothing was executed. Its reason is DEVICE_IN_FAILOVER.
type FailoverError struct {
	Device string
}

func (e *FailoverError) Error() string {
	return fmt.Sprintf("device %s is changing owner between cluster nodes; nothing was executed, retry shortly", e.Device)
}

// ErrorReason is the API's ErrorReason name for this error.
func (e *FailoverError) ErrorReason() string { return "DEVICE_IN_FAILOVER" }

// ErrorCode is the status code's name: unavailable.
func (e *FailoverError) ErrorCode() string { return "unavailable" }

// ErrorMetadata names the device for the API's ErrorInfo.
func (e *FailoverError) ErrorMetadata() map[string]string {
	return map[string]string{"device": e.Device}
}

// RemoteError is an error the owner's executor returned, carried back with its
// API reason (an ErrorReason name without the prefix) so that the node the
// caller talks to maps it as if the device were local.
type RemoteError struct {
	Code     string            `json:"code"` // a status code's name, such as "invalid_argument"
	Reason   string            `json:"reason"`
	Message  string            `json:"message"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Node     string            `json:"node,omitempty"`
}

func (e *RemoteError) Error() string { return e.Message }

// ErrorReason is the reason the owner gave.
func (e *RemoteError) ErrorReason() string { return e.Reason }

// ErrorCode is the status code the owner gave.
func (e *RemoteError) ErrorCode() string { return e.Code }

// ErrorMetadata is the metadata the owner gave, with the owning node.
func (e *RemoteError) ErrorMetadata() map[string]string {
	m := map[string]string{}
	for k, v := range e.Metadata {
		m[k] = v
	}
	if e.Node != "" {
		m["node"] = e.Node
	}
	return m
}

// NoAnswerError: the owner took the request but did not answer within the
// caller's deadline (it may have died meanwhile). The command may have run;
// it is never sent again.
type NoAnswerError struct {
	Device string
	Err    error
}

func (e *NoAnswerError) Error() string {
	return fmt.Sprintf("device %s: no answer from its owner within the deadline; the command may have run and is not retried: %v", e.Device, e.Err)
}

func (e *NoAnswerError) Unwrap() error { return e.Err }

// ErrorReason: a deadline.
func (e *NoAnswerError) ErrorReason() string { return "DEADLINE_EXCEEDED" }

// ErrorCode: deadline_exceeded.
func (e *NoAnswerError) ErrorCode() string { return "deadline_exceeded" }

// Headers of a command request.
const (
	hdrCaller   = "Switchyard-Caller"
	hdrRole     = "Switchyard-Role"
	hdrDeadline = "Switchyard-Deadline" // Unix nanoseconds
	hdrReason   = "Switchyard-Abort-Reason"
	hdrNode     = "Switchyard-Node"
)

type wireReply struct {
	Reply   *Reply       `json:"reply,omitempty"`
	Aborted string       `json:"aborted,omitempty"`
	Alarm   []byte       `json:"alarm,omitempty"`
	Err     *RemoteError `json:"error,omitempty"`
}

// DefaultCommandDeadline bounds a routed command whose caller set no deadline.
const DefaultCommandDeadline = 30 * time.Second

// Router sends commands, aborts and alarm actions to whichever node owns
// the device.
type Router struct {
	c    *Cluster
	node string

	mu    sync.Mutex
	stats RouterStats
}

// RouterStats counts routed requests by outcome.
type RouterStats struct {
	// Answered: the owner answered (with a result or its error).
	Answered uint64
	// Failover: no node owned the device (DEVICE_IN_FAILOVER).
	Failover uint64
	// NoAnswer: the owner did not answer within the deadline.
	NoAnswer uint64
	// Failed: the request could not be sent, or its answer was damaged.
	Failed uint64
}

// NewRouter makes a router for the node named node (the owner learns where a
// request came in).
func NewRouter(c *Cluster, node string) *Router { return &Router{c: c, node: node} }

// Stats returns the router's counters.
func (r *Router) Stats() RouterStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Router) count(f func(*RouterStats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// Send runs a command on the device's owner with the caller's deadline and
// identity. With no owner it fails at once with *FailoverError; it never
// sends a command twice.
func (r *Router) Send(ctx context.Context, device string, cmd Command, caller Caller) (Reply, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return Reply{}, err
	}
	w, err := r.request(ctx, r.c.Names.CommandSubject(device), device, body, caller, "")
	if err != nil {
		return Reply{}, err
	}
	if w.Reply == nil {
		return Reply{}, nil
	}
	return *w.Reply, nil
}

// Abort cancels the command in progress on the device's owner.
func (r *Router) Abort(ctx context.Context, device, reason string, caller Caller) (string, error) {
	w, err := r.request(ctx, r.c.Names.AbortSubject(device), device, nil, caller, reason)
	if err != nil {
		return "", err
	}
	return w.Aborted, nil
}

// Alarm runs an operator action on an alarm of the device at its owner, with
// the caller's deadline and identity, and returns the alarm after it (in the
// wire form the owner's Executor gives). With no owner it fails at once with
// *FailoverError.
func (r *Router) Alarm(ctx context.Context, device string, act AlarmAction, caller Caller) ([]byte, error) {
	body, err := json.Marshal(act)
	if err != nil {
		return nil, err
	}
	w, err := r.request(ctx, r.c.Names.AlarmSubject(device), device, body, caller, "")
	if err != nil {
		return nil, err
	}
	return w.Alarm, nil
}

func (r *Router) request(ctx context.Context, subject, device string, body []byte, caller Caller, reason string) (wireReply, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandDeadline)
		defer cancel()
	}
	deadline, _ := ctx.Deadline()
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(hdrCaller, caller.Name)
	m.Header.Set(hdrRole, caller.Role)
	m.Header.Set(hdrDeadline, strconv.FormatInt(deadline.UnixNano(), 10))
	m.Header.Set(hdrNode, r.node)
	if reason != "" {
		m.Header.Set(hdrReason, reason)
	}
	resp, err := r.c.NC.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		r.count(func(s *RouterStats) { s.Failover++ })
		return wireReply{}, &FailoverError{Device: device}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		r.count(func(s *RouterStats) { s.NoAnswer++ })
		return wireReply{}, &NoAnswerError{Device: device, Err: context.DeadlineExceeded}
	case err != nil:
		r.count(func(s *RouterStats) { s.Failed++ })
		return wireReply{}, fmt.Errorf("device %s: route to its owner: %w", device, err)
	}
	var w wireReply
	if err := json.Unmarshal(resp.Data, &w); err != nil {
		r.count(func(s *RouterStats) { s.Failed++ })
		return wireReply{}, fmt.Errorf("device %s: bad answer from its owner: %w", device, err)
	}
	r.count(func(s *RouterStats) { s.Answered++ })
	if w.Err != nil {
		return wireReply{}, w.Err
	}
	return w, nil
}

// Responder answers commands, aborts and alarm actions for the devices this
// node owns.
type Responder struct {
	c        *Cluster
	node     string
	exec     Executor
	classify func(error) (code, reason string, metadata map[string]string)
	log      *slog.Logger

	mu   sync.Mutex
	subs map[string][]*nats.Subscription
	wg   sync.WaitGroup
}

// NewResponder makes a responder; classify gives an executor error's status
// code name, API reason and metadata (server.ErrorStatus); nil: internal.
func NewResponder(c *Cluster, node string, exec Executor, classify func(error) (code, reason string, metadata map[string]string), log *slog.Logger) *Responder {
	if classify == nil {
		classify = func(error) (string, string, map[string]string) { return "internal", "INTERNAL", nil }
	}
	if log == nil {
		log = slog.Default()
	}
	return &Responder{c: c, node: node, exec: exec, classify: classify, log: log, subs: map[string][]*nats.Subscription{}}
}

// Start answers the device's commands and aborts. It returns once the NATS
// server knows (or ctx ended): a request sent after the ownership is announced
// finds this node.
func (r *Responder) Start(ctx context.Context, device string) error {
	// A plain subscription, not a queue group: a node cut off from NATS keeps
	// its interest on the server until the server notices the dead
	// connection, and a queue group would give it some requests to lose. Two
	// live subscribers cannot exist, since only the lease holder subscribes.
	var subs []*nats.Subscription
	for _, k := range []requestKind{kindCommand, kindAbort, kindAlarm} {
		sub, err := r.c.NC.Subscribe(k.subject(r.c.Names, device), func(m *nats.Msg) { r.serve(device, m, k) })
		if err != nil {
			for _, s := range subs {
				_ = s.Unsubscribe()
			}
			return err
		}
		subs = append(subs, sub)
	}
	r.mu.Lock()
	r.subs[device] = subs
	r.mu.Unlock()
	return r.flush(ctx)
}

// Stop stops answering for the device; it does not wait for the server (see
// Sync), so a node fencing itself is never held up by a dead connection.
// Requests already taken finish.
func (r *Responder) Stop(device string) {
	r.mu.Lock()
	subs := r.subs[device]
	delete(r.subs, device)
	r.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
}

// Sync waits until the server has seen every Start and Stop so far: after a
// Stop, a request then fails at once with no responders instead of vanishing.
func (r *Responder) Sync(ctx context.Context) error { return r.flush(ctx) }

func (r *Responder) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	return r.c.NC.FlushWithContext(ctx)
}

// Wait waits for the requests in progress (after the last Stop).
func (r *Responder) Wait() { r.wg.Wait() }

// requestKind is what a routed request asks for.
type requestKind int

const (
	kindCommand requestKind = iota
	kindAbort
	kindAlarm
)

func (k requestKind) subject(n Names, device string) string {
	switch k {
	case kindAbort:
		return n.AbortSubject(device)
	case kindAlarm:
		return n.AlarmSubject(device)
	}
	return n.CommandSubject(device)
}

func (r *Responder) serve(device string, m *nats.Msg, kind requestKind) {
	// The NATS callback goroutine must not block on a slow device: run each
	// request on its own goroutine (the device's mailbox serialises them).
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		w := r.handle(device, m, kind)
		data, _ := json.Marshal(w)
		if err := m.Respond(data); err != nil {
			r.log.Warn("cluster: answer a routed request", "device", device, "err", err)
		}
	}()
}

func (r *Responder) handle(device string, m *nats.Msg, kind requestKind) wireReply {
	caller := Caller{Name: m.Header.Get(hdrCaller), Role: m.Header.Get(hdrRole), Node: m.Header.Get(hdrNode)}
	ns, err := strconv.ParseInt(m.Header.Get(hdrDeadline), 10, 64)
	if err != nil {
		return wireReply{Err: &RemoteError{Code: "invalid_argument", Reason: "INVALID_REQUEST", Message: "routed request without a deadline", Node: r.node}}
	}
	deadline := time.Unix(0, ns)
	if !time.Now().Before(deadline) {
		return wireReply{Err: &RemoteError{Code: "deadline_exceeded", Reason: "DEADLINE_EXCEEDED", Node: r.node,
			Message: fmt.Sprintf("device %s: the caller's deadline passed before the command reached the owner; not executed", device)}}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	switch kind {
	case kindAbort:
		aborted, err := r.exec.Abort(ctx, device, m.Header.Get(hdrReason), caller)
		if err != nil {
			return wireReply{Err: r.remote(err)}
		}
		return wireReply{Aborted: aborted}
	case kindAlarm:
		var act AlarmAction
		if err := json.Unmarshal(m.Data, &act); err != nil {
			return wireReply{Err: &RemoteError{Code: "invalid_argument", Reason: "INVALID_REQUEST", Message: "routed alarm action: " + err.Error(), Node: r.node}}
		}
		a, err := r.exec.Alarm(ctx, device, act, caller)
		if err != nil {
			return wireReply{Err: r.remote(err)}
		}
		return wireReply{Alarm: a}
	}
	var cmd Command
	if err := json.Unmarshal(m.Data, &cmd); err != nil {
		return wireReply{Err: &RemoteError{Code: "invalid_argument", Reason: "INVALID_REQUEST", Message: "routed command: " + err.Error(), Node: r.node}}
	}
	rep, err := r.exec.Send(ctx, device, cmd, caller)
	if err != nil {
		return wireReply{Err: r.remote(err)}
	}
	return wireReply{Reply: &rep}
}

func (r *Responder) remote(err error) *RemoteError {
	code, reason, md := r.classify(err)
	return &RemoteError{Code: code, Reason: reason, Message: err.Error(), Metadata: md, Node: r.node}
}
