package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/auth"
)

// gate is the one policy layer every call passes, whatever its transport:
// identity (token or client certificate) → role → policy table (default deny) →
// limits → validation (the contract's protovalidate rules) → handler → request
// log and audit record. The grpc-go interceptors (gate_grpc.go) and the Connect
// interceptor (gate_connect.go) only carry a transport's credentials and
// messages to it. It outlives the runs of Serve. Safe for concurrent use.
type gate struct {
	log *slog.Logger
	// authOn: callers must identify themselves (Options.Auth has tokens or
	// certificate roles). Off, a caller without credentials is anonymous with
	// role admin (loopback only).
	authOn    bool
	tokens    *auth.Tokens // nil: no tokens accepted
	certRoles auth.CertRoles
	streams   *streamLimiter
	commands  *commandLimiter
	audit     *auditTrail
	validator protovalidate.Validator
	now       func() time.Time
}

// credentials are what a call presents, whatever its transport.
type credentials struct {
	authorization string               // the authorization header, "" if none
	tls           *tls.ConnectionState // nil without TLS
}

// identify returns the caller's identity. No credentials give the anonymous
// identity (role admin without authentication, none with it); credentials the
// server does not accept are an error even where anonymous callers are welcome,
// so a client learns that its token is wrong.
func (g *gate) identify(c credentials) (auth.Identity, error) {
	if !g.authOn {
		return auth.Anonymous(auth.Admin), nil
	}
	if c.authorization != "" {
		scheme, token, ok := strings.Cut(c.authorization, " ")
		if !ok || !strings.EqualFold(scheme, "bearer") || token == "" {
			return auth.Identity{}, &errUnauthenticated{why: "the authorization header must be \"Bearer TOKEN\""}
		}
		if g.tokens != nil {
			if id, ok := g.tokens.Lookup(strings.TrimSpace(token)); ok {
				return id, nil
			}
		}
		return auth.Identity{}, &errUnauthenticated{why: "unknown token"}
	}
	if c.tls != nil && len(c.tls.VerifiedChains) > 0 && len(c.tls.PeerCertificates) > 0 {
		if id, ok := g.certRoles.Identify(c.tls.PeerCertificates[0]); ok {
			return id, nil
		}
		return auth.Identity{}, &errUnauthenticated{why: "no role is configured for the client certificate's names " + quote(strings.Join(auth.CertNames(c.tls.PeerCertificates[0]), ", "))}
	}
	return auth.Anonymous(auth.None), nil
}

// callInfo describes a call for logs and the audit trail.
type callInfo struct {
	procedure string
	peer      string // the client's host:port; unique per connection
	transport string // "grpc" or "connect"
	userAgent string
	client    string // x-switchyard-client
}

// callState follows one call through the gate.
type callState struct {
	info     callInfo
	start    time.Time
	identity auth.Identity
	req      any // the request, once decoded (unary calls)
}

type callStateKey struct{}

// begin starts a call: its state travels in the returned context.
func (g *gate) begin(ctx context.Context, info callInfo) (context.Context, *callState) {
	st := &callState{info: info, start: g.now(), identity: auth.Anonymous(auth.None)}
	return context.WithValue(ctx, callStateKey{}, st), st
}

func callStateFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st
}

// identified records the caller's identity in the call's state and context.
func (g *gate) identified(ctx context.Context, c credentials) (context.Context, error) {
	id, err := g.identify(c)
	if err != nil {
		return ctx, err
	}
	if st := callStateFrom(ctx); st != nil {
		st.identity = id
	}
	return withIdentity(ctx, id), nil
}

// admitUnary decides a unary call once its caller is identified and its request
// decoded: policy, validation, command limits. The returned function (never nil)
// ends what admitting started.
func (g *gate) admitUnary(ctx context.Context, procedure string, req any) (func(), error) {
	id := identityFrom(ctx)
	if st := callStateFrom(ctx); st != nil {
		st.req = req
	}
	if err := authorize(id, procedure); err != nil {
		return func() {}, err
	}
	if err := g.validate(req); err != nil {
		return func() {}, err
	}
	if policy[procedure].perCommand {
		device, _, _ := auditSubject(req)
		release, err := g.commands.admit(limitKey(id, peerOf(ctx)), device)
		if err != nil {
			return func() {}, err
		}
		return release, nil
	}
	return func() {}, nil
}

// admitStream decides a server stream once its caller is identified: policy and
// stream limits. Its request is validated as it is received (validate).
func (g *gate) admitStream(ctx context.Context, procedure string) (func(), error) {
	id := identityFrom(ctx)
	if err := authorize(id, procedure); err != nil {
		return func() {}, err
	}
	if policy[procedure].public {
		return func() {}, nil
	}
	peer := peerOf(ctx)
	release, err := g.streams.admit(peer, limitKey(id, peer))
	if err != nil {
		return func() {}, err
	}
	return release, nil
}

func peerOf(ctx context.Context) string {
	if st := callStateFrom(ctx); st != nil {
		return st.info.peer
	}
	return ""
}

// validate checks a request against the contract's rules.
func (g *gate) validate(msg any) error {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	err := g.validator.Validate(m)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if errors.As(err, &verr) && len(verr.Violations) > 0 {
		v := verr.Violations[0]
		field := protovalidate.FieldPathString(v.Proto.GetField())
		msg := v.Proto.GetMessage()
		if msg == "" {
			msg = "violates rule " + v.Proto.GetRuleId()
		}
		if len(verr.Violations) > 1 {
			msg += " (and " + strconv.Itoa(len(verr.Violations)-1) + " more)"
		}
		return &fieldError{field: cut(field, maxQuoted), msg: cut(msg, 200)}
	}
	return &fieldError{field: "request", msg: cut(err.Error(), 200)}
}

// finish logs the call and, for a state-changing RPC, records it in the audit
// trail. err is what the call returns (already a transport status or not).
func (g *gate) finish(st *callState, err error) {
	code, reason := statusOf(err)
	codeName := "OK"
	if err != nil {
		codeName = strings.ToUpper(code.String())
	}
	elapsed := g.now().Sub(st.start)
	id := st.identity
	lvl := slog.LevelInfo
	if err != nil && (code == connect.CodeUnknown || code == connect.CodeInternal) { // the server's fault
		lvl = slog.LevelError
	}
	audited := policy[st.info.procedure].audit
	// An audited call's audit line (msg=audit) says all the request line
	// would, so it is the call's only line unless the server failed it.
	if !audited || lvl == slog.LevelError {
		attrs := []any{"rpc", st.info.procedure, "code", codeName, "duration", elapsed, "peer", st.info.peer,
			"transport", st.info.transport, "identity", id.Name, "role", id.Role.String(), "user_agent", cut(st.info.userAgent, maxQuoted)}
		if st.info.client != "" {
			attrs = append(attrs, "client", cut(st.info.client, maxQuoted))
		}
		if err != nil {
			attrs = append(attrs, "err", cut(messageOf(err), 300))
		}
		g.log.Log(context.Background(), lvl, "finished call", attrs...)
	}
	if !audited {
		return
	}
	rec := audit.Record{
		Time: g.now(), Identity: id.Name, Role: id.Role.String(), Method: string(id.Method),
		Peer: st.info.peer, Transport: st.info.transport, RPC: st.info.procedure, Code: codeName,
		Duration: elapsed, UserAgent: cut(st.info.userAgent, maxAuditField), Client: cut(st.info.client, maxAuditField),
	}
	rec.Device, rec.Target, rec.Args = auditSubject(st.req)
	if err != nil {
		rec.Reason = ReasonName(reason)
		rec.Error = cut(messageOf(err), 300)
	}
	g.audit.record(rec)
}

// panicked is what a handler's panic becomes, on either transport: logged with
// its stack, answered with Internal; the server goes on serving.
func (g *gate) panicked(procedure string, p any) error {
	g.log.Error("panic in handler", "rpc", procedure, "panic", p, "stack", string(debug.Stack()))
	return errInternal
}

// errInternal answers a request whose handler panicked.
var errInternal = errors.New("internal error")

// messageOf is an error's message without a transport's "rpc error: code = ..."
// wrapping.
func messageOf(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	if st, ok := status.FromError(err); ok {
		return st.Message()
	}
	return err.Error()
}
