package supervisor

import "context"

// reporterKey is the context key under which a child's context carries its
// reporter: the process reports its own status without knowing its supervisor.
type reporterKey struct{}

type reporter struct {
	s    *Supervisor
	c    *child
	inst *instance
}

// ReportStatus records what the process serving under ctx is doing in its
// own terms (a device: "backoff: dial ...: connection refused; next attempt
// 12:00:03.000"). A process that handles failures inside itself stays
// Running through them; its status says how it is doing. The status shows in
// Snapshot (Node.Status) while the process runs, and each change emits an
// EventStatus whose Reason is the new status, so watchers see an instrument
// fail and recover without polling the tree. Reporting the same status again
// emits nothing.
//
// ctx is the context the supervisor passed to Serve, or one derived from it;
// ReportStatus does nothing for any other context, or once this incarnation
// has been stopped or replaced. It never blocks on the supervisor's loop and
// is safe from any goroutine.
func ReportStatus(ctx context.Context, status string) {
	r, _ := ctx.Value(reporterKey{}).(*reporter)
	if r == nil {
		return
	}
	if ctx.Err() != nil {
		return // stopping: the stop event tells the rest
	}
	s, c := r.s, r.c
	s.mu.Lock()
	if r.inst.status == status || c.inst != r.inst {
		s.mu.Unlock()
		return
	}
	r.inst.status = status
	restarts := c.restarts
	s.mu.Unlock()
	s.emit(Event{Kind: EventStatus, Child: c.spec.ID, Reason: status, Restarts: restarts})
}
