package server

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/switchyard/switchyard/auth"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// access is what calling one RPC takes.
type access struct {
	// role is the least role that may call it; auth.None lets every caller in,
	// also one without credentials (whose credentials, if any, must still be valid).
	role auth.Role
	// public RPCs look at no credentials at all (health, reflection).
	public bool
	// audit records every call (allowed or refused) in the audit trail: the
	// RPCs that change state.
	audit bool
	// perCommand: the RPC lets a viewer in, and the command decides (its role in
	// the device model, operator when it has none; admin for raw lines). Calls
	// are rate-limited per identity and share each device fairly.
	perCommand bool
}

// policy is the one table of who may call what (default deny: an RPC missing
// here is refused to everyone, and TestPolicyCoversEveryRPC fails). The README's
// role table is generated from it (go test ./server -run TestREADMERoleTable
// -update).
var policy = map[string]access{
	pb.DeviceService_ListDevices_FullMethodName:  {role: auth.Viewer},
	pb.DeviceService_GetDevice_FullMethodName:    {role: auth.Viewer},
	pb.DeviceService_SendCommand_FullMethodName:  {role: auth.Viewer, perCommand: true, audit: true},
	pb.DeviceService_AbortCommand_FullMethodName: {role: auth.Operator, audit: true},
	pb.DeviceService_WatchDevices_FullMethodName: {role: auth.Viewer},

	pb.TelemetryService_Subscribe_FullMethodName: {role: auth.Viewer},
	pb.TelemetryService_GetLatest_FullMethodName: {role: auth.Viewer},

	pb.HistoryService_QueryHistory_FullMethodName: {role: auth.Viewer},

	pb.AlarmService_ListActiveAlarms_FullMethodName: {role: auth.Viewer},
	pb.AlarmService_WatchAlarms_FullMethodName:      {role: auth.Viewer},
	pb.AlarmService_GetAlarmLimits_FullMethodName:   {role: auth.Viewer},
	pb.AlarmService_Acknowledge_FullMethodName:      {role: auth.Operator, audit: true},
	pb.AlarmService_Shelve_FullMethodName:           {role: auth.Operator, audit: true},
	pb.AlarmService_SetAlarmLimits_FullMethodName:   {role: auth.Admin, audit: true},

	pb.SystemService_GetSupervisionTree_FullMethodName:     {role: auth.Viewer},
	pb.SystemService_WatchSupervisionEvents_FullMethodName: {role: auth.Viewer},
	pb.SystemService_GetIdentity_FullMethodName:            {role: auth.None},
	pb.SystemService_RestartProcess_FullMethodName:         {role: auth.Admin, audit: true},
	pb.SystemService_WatchAudit_FullMethodName:             {role: auth.Admin},
	pb.SystemService_ReloadConfig_FullMethodName:           {role: auth.Admin, audit: true},
	pb.SystemService_GetConfig_FullMethodName:              {role: auth.Viewer},
	pb.SystemService_GetClusterView_FullMethodName:         {role: auth.Viewer},

	healthpb.Health_Check_FullMethodName:                                   {public: true},
	healthpb.Health_Watch_FullMethodName:                                   {public: true},
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      {public: true},
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: {public: true},
}

// errUnauthenticated: no credentials where the RPC needs them, or credentials
// the server does not accept.
type errUnauthenticated struct{ why string }

func (e *errUnauthenticated) Error() string { return "unauthenticated: " + e.why }

// permissionError: the caller's role may not do this.
type permissionError struct {
	what     string // the RPC or command
	role     auth.Role
	required auth.Role
}

func (e *permissionError) Error() string {
	if e.required == auth.None {
		return fmt.Sprintf("permission denied: %s is not allowed to anyone (no policy entry)", e.what)
	}
	return fmt.Sprintf("permission denied: %s needs role %s, the caller has %s", e.what, e.required, e.role)
}

// ErrorMetadata names the roles in the error's ErrorInfo.
func (e *permissionError) ErrorMetadata() map[string]string {
	return map[string]string{"role": e.role.String(), "required_role": e.required.String()}
}

// authorize decides whether id may call procedure, from the policy table.
func authorize(id auth.Identity, procedure string) error {
	a, ok := policy[procedure]
	switch {
	case !ok:
		return &permissionError{what: procedure, role: id.Role}
	case a.public || id.Role >= a.role:
		return nil
	case !id.Authenticated:
		return &errUnauthenticated{why: procedure + " needs credentials (a bearer token or a client certificate)"}
	default:
		return &permissionError{what: procedure, role: id.Role, required: a.role}
	}
}

// authorizeCommand decides whether the caller in ctx may send a command whose
// model role is role ("": operator), or a raw line (admin).
func authorizeCommand(ctx context.Context, device, command string, raw bool, role string) error {
	id := identityFrom(ctx)
	need := auth.Operator
	what := fmt.Sprintf("command %s of device %s", quote(command), quote(device))
	if raw {
		need, what = auth.Admin, "a raw line to device "+quote(device)
	} else if role != "" {
		r, err := auth.ParseRole(role)
		if err != nil {
			// The configuration refuses unknown roles; deny if one got through.
			return &permissionError{what: what, role: id.Role, required: auth.Admin}
		}
		need = r
	}
	if id.Role >= need {
		return nil
	}
	if !id.Authenticated {
		return &errUnauthenticated{why: what + " needs credentials"}
	}
	return &permissionError{what: what, role: id.Role, required: need}
}

// allowedMethods lists the RPCs role may call, in table order of full name.
func allowedMethods(role auth.Role) []string {
	var out []string
	for m, a := range policy {
		if !a.public && role >= a.role {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

// identityKey is the context key of the caller's identity.
type identityKey struct{}

func withIdentity(ctx context.Context, id auth.Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// identityFrom returns the caller's identity; without one (a call that did not
// pass the gate) it is anonymous with no role.
func identityFrom(ctx context.Context) auth.Identity {
	if id, ok := ctx.Value(identityKey{}).(auth.Identity); ok {
		return id
	}
	return auth.Anonymous(auth.None)
}

// who is the name recorded for an operator action: the identity's name, or,
// without authentication (where it cannot be known), what the request says.
func who(ctx context.Context, claimed string) string {
	id := identityFrom(ctx)
	if id.Authenticated || claimed == "" {
		return id.Name
	}
	return claimed
}

// RoleTable returns the README's role table (Markdown), generated from the
// policy table: one row per RPC with the least role that may call it.
func RoleTable() string {
	type row struct{ service, method, who, notes string }
	var rows []row
	for m, a := range policy {
		svc, name, _ := strings.Cut(strings.TrimPrefix(m, "/"), "/")
		r := row{service: svc, method: name}
		switch {
		case a.public:
			r.who = "anyone, no credentials looked at"
		case a.role == auth.None:
			r.who = "anyone (credentials, if sent, must be valid)"
		default:
			r.who = a.role.String()
		}
		var notes []string
		if a.perCommand {
			notes = append(notes, "each command needs its model `role` (operator when it has none); raw lines need admin; rate-limited per identity")
		}
		if a.audit {
			notes = append(notes, "audited")
		}
		r.notes = strings.Join(notes, "; ")
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := strings.Compare(a.service, b.service); c != 0 {
			return c
		}
		return strings.Compare(a.method, b.method)
	})
	var b strings.Builder
	b.WriteString("| service | RPC | least role | notes |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.service, r.method, r.who, r.notes)
	}
	return b.String()
}

// Rule is one entry of the policy table, for tools and tests.
type Rule struct {
	// Role is the least role that may call the RPC (auth.None: anyone).
	Role auth.Role
	// Public RPCs look at no credentials (health, reflection).
	Public bool
	// Audited RPCs change state; every call is in the audit trail.
	Audited bool
	// PerCommand: each named command needs its model role (operator when it has
	// none), raw lines admin.
	PerCommand bool
}

// PolicyOf returns the policy entry of a full method name; ok is false for an
// RPC without one (which everyone is refused).
func PolicyOf(procedure string) (r Rule, ok bool) {
	a, ok := policy[procedure]
	return Rule{Role: a.role, Public: a.public, Audited: a.audit, PerCommand: a.perCommand}, ok
}

// PolicyProcedures lists the full method names of the policy table, sorted.
func PolicyProcedures() []string {
	out := make([]string, 0, len(policy))
	for m := range policy {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
