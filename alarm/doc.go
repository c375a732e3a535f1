// Package alarm owns the alarm engine: per-channel limits (HIHI/HIGH/LOW/LOLO with
// severities, hysteresis and a delay), the comm-failure, stale-value and
// read-back-versus-set-point alarms, latching until acknowledged, shelving, run-time
// limit changes, and the archive of alarm transitions.
//
// # Model
//
// A Rule selects channels by device and channel glob and carries their Limits. Each
// selected channel gets a Machine: a pure, single-threaded state machine driven by
// samples, device up/down events, the passing of time (Tick) and operator actions
// (Ack, Shelve, SetLimits). Every call takes the time explicitly, so tests drive it
// with any clock. A call that changes what an operator should see returns
// Transitions; a sample that changes nothing returns none, so WatchAlarms carries
// transitions only.
//
// An alarm latches: its Latched severity is the highest severity seen since the last
// acknowledgement, and it stays active (listed, unacknowledged) until an operator
// acknowledges it, even after the condition has cleared.
//
// A configuration reload replaces the rules at once (Engine.SetRules): channels
// whose rule now gives other limits get them as a LIMITS_CHANGED transition,
// channels no rule selects any more lose their alarm (an active one clears
// first), and the others keep theirs, also limits an operator set. A device the
// device manager reports removed (Info.Removed) loses its alarms the same way.
//
// # Concurrency contract
//
// Machine is not safe for concurrent use. Engine owns every Machine on its Serve
// goroutine; its other methods (List, Ack, Shelve, SetLimits, SetRules, Get) send a typed
// request to that goroutine and wait for the answer, so they are safe from any
// goroutine and fail with ErrNotRunning when Serve is not running. Engine never
// blocks on a watcher: each Watch has a bounded queue whose overflow drops the
// oldest transitions and counts them (Watch.Dropped). Watchers is that set of
// watches on its own, for transitions from elsewhere (a cluster node's view of
// every owner's). Sinks are handed every
// transition through Record with Serve's context; Archive (the transitions'
// table, an ingest.Recorder spooled to disk with a spool directory) never
// drops: at its bound it makes the engine wait, whose own lossless queue in the
// hub then holds the publishers back (back-pressure, raised as a system alarm).
//
// Transition times are unique per Engine and increase (Engine.emit stamps them
// at microseconds, the archive's precision), so the archive keeps every
// transition and History replays them in order from any time on (WatchAlarms
// since_ns); Watch.After says where a watch's live part starts.
//
// SystemRules are the alarms on the server's own health (switchyard/... channels:
// archive spools, damage, a stopped archive, the hub holding publishers back).
package alarm
