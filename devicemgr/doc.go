// Package devicemgr owns the device processes: one goroutine per configured
// instrument that owns its single connection, dials, identifies, polls the
// device's channels at their periods, runs commands in between polls on the same
// connection, and publishes every reading (or the reason there is none) as a
// telemetry.Sample.
//
// # Failure is a state
//
// A connection that cannot be made, breaks, times out or answers garbage never
// turns into a gap: every channel of the device is published with a bad quality
// (COMM_ERROR, TIMEOUT, PARSE_ERROR, DISCONNECTED) and the device's State moves
// to Backoff, with the time of the next attempt. Reconnection uses capped,
// jittered exponential backoff that resets once a connection has stayed up.
// A reply timeout also ends the connection: a late reply can then never be read
// as the answer to a later request.
//
// Connection failures are expected and handled inside the process; a panic or a
// bug makes Serve return, and the supervisor that runs the process restarts it.
// Sequence numbers and restart counts live in the Manager, so they survive such
// restarts.
//
// # Concurrency contract
//
// Each Device's state (connection, schedule) is owned by the goroutine running its
// Serve. Commands reach it through a bounded queue and are executed between polls,
// one outstanding request at a time. Info snapshots and the state feed are safe
// from any goroutine; Publish is called on the device's goroutine and must not
// block (telemetry.Hub never does).
package devicemgr
