// Package devicemgr owns the device processes: one goroutine per configured
// instrument that owns its single connection, dials, identifies, runs the init
// sequence, polls the device's channels at their periods, runs commands in
// between polls on the same connection, and publishes every reading (or the
// reason there is none) as a telemetry.Sample.
//
// # Drivers
//
//   - scpi: query/reply text on one serialised lane, one outstanding request at
//     a time, with reply accounting (below). Channels with the same period are
//     polled in one cycle, one query per line, or, when the model says the
//     instrument takes joined messages (MaxJoin), their queries joined with ';'
//     into one round trip; channels with the same query and reply format share
//     one query, the format's values going to several channels (see
//     ReplyFormat: scanf-like conversions or named regular expressions).
//     Writes are confirmed with *OPC? by default, or acknowledged (WriteAck).
//   - lines: the device pushes lines (key=value pairs, CSV with a header, or one
//     JSON object per line); every line is read and published. Silence longer
//     than the idle timeout is a TIMEOUT.
//   - modbus: Modbus TCP holding and input registers, coils and discrete
//     inputs, with data types, word order and linear scaling; adjacent
//     registers of one period are read in one request (MaxBlock, MaxGap);
//     commands write one channel's holding register or coil, in the channel's
//     units: the register gets (value − offset) / scale.
//
// # Reply accounting
//
// For every line it writes (poll, init line, command, read-back query,
// confirmation) the scpi driver knows how many lines come back and reads
// exactly those: the echo (Echo), one reply for a line holding a query, one
// acknowledgement for a write (WriteAck) or nothing, which is then checked
// (no line may follow an unconfirmed write for a moment). ErrorReply can stand
// in for any reply: the instrument refused that line (an *InstrumentError for
// a command, COMM_ERROR for a poll), and the count is kept. Unsolicited lines
// are skipped wherever they arrive. A reply that does not fit what was asked
// (does not parse, wrong number of parts, a confirmation that is not 1, a line
// nobody asked for, the query repeated) is never published as GOOD for any
// channel: the device is out of step, every channel gets PARSE_ERROR quoting
// the reply, the session ends so the connection is made again (any late reply
// goes with the old one), and it is counted (Info.OutOfStep and a metric).
// Whatever the model, a reply is not attributed to the wrong query.
//
// # Arguments and callers
//
// A command's arguments are checked before anything is sent: finite numbers
// in range, strings matching their Pattern (default DefaultStringPattern:
// printable, no ';'), raw lines printable and at most MaxLineBytes. A caller's
// deadline, or the Command's Timeout, bounds how long the caller waits, never
// the exchange: a caller that gives up gets context.DeadlineExceeded while the
// device reads the reply to its end, so the connection stays in step.

// # Scheduling
//
// Devices do not run a timer each. The Manager runs one scheduler goroutine per
// poll period in use, shared by every device group with that period; it cuts
// the period into slots so the polls spread over the period, and at each
// slot's tick hands each of the slot's groups a "poll now" token without
// blocking: a pending-tick field set only when empty and a non-blocking send on
// the device's 1-buffered wake channel. The device's own goroutine does the I/O,
// so a slow or hung device never delays another's poll. A slot holds many
// groups (a period has one slot per 48 groups, in powers of two, at most 64,
// at least 1 ms apart; more as devices connect), because waking an idle
// process costs more than the poll it starts: the groups of a slot are woken
// by one wake-up and run back to back. Each group is polled once at once when
// its session starts.
//
// A cycle that ends a period or more after its tick is an overrun: it is
// counted (Info.Overruns and a metric) and the missed slots are skipped, never
// queued. A poll cycle is one round trip per group where the queries can be
// joined, under one deadline that covers the write and the reply, and publishes
// its samples in one batch that the device reuses for its next cycle.
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
// jittered exponential backoff (BackoffMin, BackoffMultiplier, BackoffMax) that
// resets once a connection has stayed up, and re-runs the init sequence; while
// it waits, a TCP connect probes the address every ProbeInterval, and once the
// instrument has been unreachable, the first probe that connects ends the
// wait. A reply that does not fit puts the device out of step (above). A reply
// timeout ends the connection: whatever the device still had to say is flushed
// with it, so a late reply can never be read as the answer to a later request.
//
// Connection failures are expected and handled inside the process; a panic or a
// bug makes Serve return, and the supervisor that runs the process restarts it.
// Sequence numbers and restart counts live in the Manager, so they survive such
// restarts.
//
// # Changing the set of devices
//
// Start hands the devices to a Runner, the devices supervisor; from then on the
// set can change while they run (a configuration reload, or a cluster moving a
// device between nodes). Apply takes the whole new list of specs and applies it
// as a diff (Plan says what it would do): a new device is added and started; a
// removed one stops for good (Remove); one whose spec changed in more than its
// tags, units or model name (Compare) restarts with the new spec, its channels
// going on with their sequence numbers; tags and units change in place, seen at
// once by Info, WatchStates and Tags; an unchanged device is not touched (same
// connection, same numbering). A device that stops refuses new commands, fails
// its queued ones with ErrDeviceRemoved (removed) or ErrNotConnected (restarted),
// gives the command in progress Options.StopGrace before aborting it with that
// reason, then publishes every channel DISCONNECTED with the reason and its last
// Info (Removed set for a removed one); the hub (a Forgetter) drops the latest
// values of channels that are gone. Devices stop on goroutines of their own, so
// one slow command holds up only its device; a new device waits only for a
// stopping one at its own address (never two connections to one instrument).
// Changes are serialised: one Apply, Add or Remove at a time.
//
// # Concurrency contract
//
// Each Device's state (connection, schedule) is owned by the goroutine running its
// Serve. Commands reach it as calls on its supervisor.Mailbox (Device.Mailbox)
// and are executed between polls, one outstanding request at a time; an abort
// on the mailbox's control lane (Device.Abort) cancels the one in progress.
// Serve reports its connection summary (Info.Summary) to its supervisor with
// supervisor.ReportStatus. Poll tokens reach it from the shared period
// schedulers, which start with a period's first connected group and stop (and are
// waited for) when its last one leaves, so a Manager whose devices are all
// stopped runs no goroutine. Info snapshots, lookups (List, Get, Send, Abort,
// Tags) and the state feed are safe from any goroutine, also while the set of
// devices changes; Publish is called on the device's goroutine, must not block
// (telemetry.Hub never does) and must not keep the batch after it returns. A
// ReplyFormat is immutable and safe to share.
package devicemgr
