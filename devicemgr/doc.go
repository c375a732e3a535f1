// Package devicemgr owns the device processes: one goroutine per configured
// instrument that owns its single connection, dials, identifies, runs the init
// sequence, polls the device's channels at their periods, runs commands in
// between polls on the same connection, and publishes every reading (or the
// reason there is none) as a telemetry.Sample.
//
// # Drivers
//
//   - scpi: query/reply text on one serialised lane, one outstanding request at
//     a time. Channels with the same period are polled in one cycle, their
//     queries joined with ';' into one round trip; channels with the same query
//     and reply format share one query, the format's values going to several
//     channels (see ReplyFormat: scanf-like conversions or named regular
//     expressions). Writes are confirmed with *OPC? by default.
//   - lines: the device pushes lines (key=value pairs, CSV with a header, or one
//     JSON object per line); every line is read and published. Silence longer
//     than the idle timeout is a TIMEOUT.
//   - modbus: Modbus TCP holding and input registers, coils and discrete
//     inputs, with data types, word order and linear scaling; commands write
//     one channel's register or coil.
//
// A cycle that takes longer than its period is an overrun: it is counted
// (Info.Overruns and a metric) and the missed slots are skipped, never queued.
// A command waits at most the lock timeout for its turn on the lane. A write
// that names a read-back channel succeeds only once that channel reads within
// its tolerance of the set value, else it fails with ErrNotSettled.
//
// # Failure is a state
//
// A connection that cannot be made, breaks, times out or answers garbage never
// turns into a gap: every channel of the device is published with a bad quality
// (COMM_ERROR, TIMEOUT, PARSE_ERROR, DISCONNECTED) and the device's State moves
// to Backoff, with the time of the next attempt. Reconnection uses capped,
// jittered exponential backoff that resets once a connection has stayed up, and
// re-runs the init sequence. A reply that does not match its format is a
// PARSE_ERROR sample keeping the reply (bounded) in Sample.Err; the connection
// stays. A reply timeout ends the connection: whatever the device still had to
// say is flushed with it, so a late reply can never be read as the answer to a
// later request.
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
// block (telemetry.Hub never does). A ReplyFormat is immutable and safe to share.
package devicemgr
