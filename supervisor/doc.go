// Package supervisor runs services under OTP-style supervision: restart
// strategies, restart types, restart intensity with escalation, per-child
// backoff, bounded shutdown with a kill hook, dynamic children, process
// mailboxes with a priority control lane, a registry, a snapshot of the
// whole tree and a lifecycle event stream.
//
// # Model, next to OTP
//
// A Service is anything with Serve(ctx) error (the shape of suture v4).
// A *Supervisor is itself a Service, so supervisors nest into a tree.
//
//   - Children are kept in the order they were added, started in that
//     order, each start waiting until the child is ready (see Readier) or
//     has failed, and stopped in reverse order.
//   - Exit kinds: a nil return is normal; an error or a panic (recovered,
//     recorded with its stack) is abnormal; whatever a child returns after
//     its supervisor cancelled it is a normal shutdown.
//   - Restart types (RestartType) have OTP's meaning: Permanent always,
//     Transient after an abnormal exit, Temporary never, not even when a
//     sibling's failure stops it (it is then removed).
//   - Strategies: OneForOne, OneForAll, RestForOne. Siblings stopped for a
//     restart are stopped in reverse order and started again in order.
//   - Restart intensity: more than Options.MaxRestarts restarts within
//     Options.MaxTime make the supervisor stop its children and return an
//     *EscalationError, which its parent treats as a failure: escalation.
//   - Significant children and Options.AutoShutdown work as in OTP 24+.
//
// Differences from OTP, on purpose:
//
//   - Restarts are delayed by a per-child Backoff (exponential, capped,
//     jittered, reset after a stable uptime); the child is BackingOff
//     meanwhile. Intensity is counted when a failure is decided, so it
//     measures how fast things fail, while backoff paces the restarts.
//     Backoff.Min < 0 restarts at once, as OTP does.
//   - A child that fails to start is not fatal to its supervisor: it is an
//     abnormal exit like any other and goes through restart type,
//     intensity and backoff. A lab must come up with an instrument
//     switched off.
//   - Shutdown is cancel, wait ChildSpec.Shutdown, call ChildSpec.Kill (for
//     a device: close its socket), wait ChildSpec.KillWait. Go cannot kill
//     a goroutine, so one that still runs is marked Leaked, and its child
//     is not started again until that goroutine has ended: two connections
//     to one instrument are worse than none.
//   - A restarted supervisor starts all its remaining children afresh;
//     dynamically added children stay (there is no init callback).
//
// # Concurrency contract
//
// Each running supervisor owns its state on the goroutine that called
// Serve. Child goroutines report exits through a mutex-guarded queue and a
// 1-buffered wake channel, so a child never blocks on its supervisor. Add
// and Remove are typed requests to that goroutine while it runs, and plain
// edits before. Nothing sleeps under a lock. Snapshot reads state the loop
// publishes under a short lock and never waits for the loop or a child.
// Events are published without blocking into each subscriber's bounded
// ring (oldest dropped and counted) and handed over on the reader's
// goroutine by Subscription.Next. Serve returns only after every child
// goroutine it started has exited, except leaked ones, which it reports
// with an error wrapping ErrLeaked.
//
// A child may call Snapshot at any time, and its own supervisor's Add and
// Remove once it is ready, but not before (the supervisor is waiting for
// its ready call) nor while being stopped (the supervisor is waiting for it
// to exit): as in OTP, that deadlocks until StartTimeout or Shutdown runs
// out.
//
// Time comes from the time package. Tests run inside testing/synctest
// bubbles, whose fake clock drives time.Now and every timer here; jitter
// comes from Options.Rand.
//
// # Use
//
//	devices := supervisor.New("devices", supervisor.Options{MaxRestarts: 50, MaxTime: 10 * time.Second})
//	for _, d := range devs {
//		err := devices.Add(supervisor.ChildSpec{ID: d.Name(), Service: d, Kill: d.Close, Mailbox: d.Mailbox()})
//		...
//	}
//	root := supervisor.New("root", supervisor.Options{})
//	root.Add(supervisor.ChildSpec{ID: "devices", Service: devices})
//	err := root.Serve(ctx) // until ctx ends, or an *EscalationError
//	tree := root.Snapshot() // from any goroutine, at any time
//
// Size intensity to the children: it counts the restarts of all children
// of one supervisor together, as in OTP, so a supervisor of many
// independent instruments needs a MaxRestarts that a network blip taking
// many of them down at once does not exceed, or it escalates and restarts
// every device. Reconnecting inside a device process (with its own
// backoff) keeps such blips from reaching the supervisor at all.
//
// # Mailboxes
//
// A Mailbox is a process's inbox: Call (request/reply bounded by the
// caller's context, a timeout and optionally a queue timeout; a late reply
// is dropped and counted), Cast, and Control (stop, abort, reconfigure),
// whose lane is received first while each lane stays FIFO. Abort cancels
// the context of the message in progress with ErrAborted as its cause. A
// Mailbox given in ChildSpec.Mailbox outlives its process's restarts: when
// the process exits, queued calls fail with ErrRestarted or ErrStopped and
// are never replayed to the new one.
//
// # Reconfiguration
//
// Reconfigured publishes an EventReconfigured about a supervisor: the
// configuration of its tree changed while it ran (a reload added, removed or
// replaced children). Its Reason says how in one line; its Detail carries the
// caller's record of the change for watchers that know its type.
//
// # Status
//
// A process that handles failures inside itself (a device reconnecting to
// its instrument) stays Running through them. It says how it is doing with
// ReportStatus(ctx, status) on the context its supervisor gave it: the
// status shows in Snapshot, and each change is an EventStatus, so watchers
// see a failing instrument without polling the tree.
package supervisor
