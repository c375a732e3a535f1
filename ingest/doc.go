// Package ingest archives records into QuestDB and reads samples back.
//
// It owns the durable archive: one Writer[T] for every kind of record, each a
// Table[T] of its own (its QuestDB table, a codec for the spool and a row
// encoder): telemetry samples (SampleTable, NewSampleWriter), device events
// (EventTable, EventWriter), and in other packages alarm transitions and the
// audit trail. A Writer speaks to the database only through the narrow
// Appender interface (create a table; encode rows into a request; send it):
// package ingest/questdb implements it over ILP/HTTP, and ingesttest.FakeDB
// stands in for it in tests, so every durability property below is tested
// without QuestDB too. A Recorder[T] is a Writer fed one record at a time through
// a bounded, lossless queue (events, transitions, audit records).
//
// It also owns History (raw and downsampled queries of one channel, replay pages
// of all channels, and Settle: wait until everything published so far is
// queryable), Log[T] (any Table read back in time order for a replay: pages
// exact at microsecond boundaries, outages retried, Settle) and DeviceHistory
// (the archived device state changes, for WatchDevices since_ns), a small SQL
// helper (Query, CountRows, Cells) over QuestDB's HTTP /exec endpoint, and the
// SpoolMonitor that publishes the archives' health as system channels.
//
// # Table
//
// The Writer creates its table at start if it is missing:
//
//	samples (ts TIMESTAMP, device SYMBOL, channel SYMBOL, seq LONG,
//	         value_double DOUBLE, value_long LONG, value_string VARCHAR, value_bool BOOLEAN,
//	         quality SYMBOL, error VARCHAR)
//	TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device, channel, seq)
//
// A row carries only the value column that matches its sample's Kind; the others are
// null. QuestDB has no null BOOLEAN, so value_bool reads false on rows that are not
// booleans. A bad-quality row has no value, only quality and error. An existing table
// is used as it is: the Writer does not check that it has the DEDUP keys.
//
// # Spool
//
// With Options.SpoolDir set, the Writer first moves every sample it drains from its
// source into a durable spool on local disk, then sends from the spool:
//
//   - Segments (<16 hex digits>.seg, a new one every SpoolSegmentBytes) hold frames:
//     payload length, CRC-32C, payload (one sample). A batch is written in one write
//     and, unless SpoolNoFsync, fsynced before the Writer takes more from its source.
//   - The file "ack" holds the position up to which QuestDB has acknowledged (or the
//     dead-letter file holds) every record. It is replaced atomically (write, rename)
//     after each acknowledged request, without fsync: after a power cut it may be
//     older than what QuestDB holds, and the rows in between are sent again, which
//     the DEDUP keys make harmless (a rejected row may be dead-lettered twice). A
//     record is only ever lost if it is in no segment, and segments are deleted
//     only once wholly before the ack, that is, in QuestDB.
//   - At start the Writer replays everything after the acknowledged position. The
//     spool is read like a trusted log: only damage at the end of the last segment
//     that no valid frame follows (a write cut short by a crash) is a torn tail,
//     truncated and counted. Damage anywhere else is skipped frame by frame
//     (reading resumes at the next valid frame), a copy of the segment is kept
//     under quarantine/, and it is logged at error, counted
//     (switchyard_ingest_spool_damage_total, SpoolStatus.Damaged) and raised by
//     the SpoolMonitor as a system alarm; the same goes for damage found later by
//     the reader. A *.seg file whose name is not a position (a stray zz.seg) is
//     moved to quarantine/. An unreadable ack file replays the whole spool
//     (harmless: DEDUP).
//   - The directory is locked (flock on "lock") while a Writer uses it.
//   - Disk bound (SpoolMaxBytes): at 80% the Writer warns (log, spool_level 1). When
//     a batch does not fit, the spool is full (log at error, spool_level 2,
//     SpoolStatus().Full): the Writer stops draining its source, so new records wait
//     in the source's lossless queue in memory (nothing is dropped; the queue is
//     bounded and past its bound holds its producers back), until QuestDB's
//     acknowledgements bring the spool back under 80%. Without a spool the Writer
//     holds at most MaxPendingRows in memory, then stops draining the same way.
//   - A spool the Writer cannot use (it cannot be opened, or a write to it fails)
//     does not end Serve: archiving stops (SpoolStatus.Stopped, logged at error,
//     raised by the SpoolMonitor), the records the source delivers meanwhile are
//     counted as not archived (switchyard_ingest_not_archived_total) rather than
//     held back, Archived returns ErrArchiveStopped, and the Writer tries the spool
//     again with a backoff (1 s to 30 s). CheckSpoolDir lets a server refuse a
//     directory it cannot use before it starts.
//
// # Delivery guarantee
//
// Sending is at-least-once: a batch is kept (in the spool, or in memory without
// one) until QuestDB acknowledges it, and re-sent after a backoff (capped, jittered,
// exponential) for as long as the failure is a transport error or any answer but
// 400/413 (5xx, 421, and also 401/403/404, which need an operator), without limit
// while Serve runs. go-questdb-client empties its buffer on a failed flush; the
// Writer re-encodes from its own copy. A re-sent batch that QuestDB had already
// committed lands on the same DEDUP keys, so the table holds each sample once.
//
// The limits of that guarantee:
//   - Samples in the hub's queue and the one batch being spooled are in memory: a
//     crash loses them (with the spool, that is what arrived since the last drain,
//     typically milliseconds of data; more while the spool is full). Without a spool
//     everything not yet acknowledged is in memory (Writer.Pending).
//   - With SpoolNoFsync, a power loss or kernel crash (not a process crash) can lose
//     the batches the OS had not yet written.
//   - A request QuestDB answers 400 or 413 is split (at the line QuestDB blamed, or
//     in halves) until the offending rows are alone. A row QuestDB rejects even
//     alone is written with QuestDB's message to the dead-letter file (JSON lines,
//     see DeadLetter), logged (up to ten per batch) and counted
//     (switchyard_ingest_bad_rows_total, switchyard_ingest_dead_letters_total); the
//     rest of its batch lands.
//   - When Serve's context ends it drains the source once more and keeps trying to
//     flush for Options.ShutdownTimeout. With a spool, what is left stays there for
//     the next start (Serve returns nil); without one, Serve's error wraps
//     ErrNotArchived. Samples published after that last drain are not the Writer's:
//     stop producers first.
//
// # Archive filter
//
// Options.Filter (see Filter, ChannelFilter) keeps chosen channels' unchanged or
// barely changed values out of the archive: a deadband (absolute, or relative to
// the last archived value) plus a heartbeat that archives an unchanged value every
// period. Quality or error changes are always archived. It applies to the archive
// only; live subscribers see every sample. Held-back samples are counted
// (switchyard_ingest_filtered_total), and a filtered channel's archive, and so a
// Subscribe replay, has gaps in seq by design. Writer.SetFilter replaces the
// filter between two batches (a configuration reload); a channel filtered
// before and after goes on from its last archived sample.
//
// # Events
//
// EventWriter is a Recorder of device events (Event: time, source, kind, seq,
// message, detail) in their own table. Record waits while its queue is at its
// bound. DeviceEvents feeds it from the device manager's status watch (the
// telemetry.DeviceStatus of each change; a watch that keeps every change, so a
// restart's quick states are all archived), and DeviceHistory reads the changes
// back (DeviceEvents.Sync makes its Settle cover every change published before
// it). Every Writer has a spool directory of its own.
//
// # History
//
// History answers raw and downsampled (SAMPLE BY) queries of one channel, pages of
// every channel for a replay (Since), and Settle, which waits until everything
// published before the call is acknowledged (Writer.Archived, also an explicit
// flush) and applied by QuestDB's WAL (Visible), so that a replay followed by live
// samples has no gap.
//
// # Metrics
//
// All labelled with the table: switchyard_ingest_rows_written_total (rows/s is its
// rate), _flushes_total, _flush_failures_total{reason}, _retries_total,
// _pending_rows, _spool_rows (depth), _spool_bytes, _spool_level,
// _oldest_unacked_age_seconds, _bad_rows_total, _dead_letters_total,
// _spooled_rows_total, _spool_write_errors_total, _spool_torn_bytes_total,
// _spool_corrupt_bytes_total, _spool_damage_total, _not_archived_total.
//
// # Concurrency
//
// Serve runs the Writer's goroutine: it alone drains the source and owns the
// Appender's requests, the spool and the dead-letter file, so nothing in the write
// path is locked. While a backlog is flushed, one request at a time is in flight
// from a short-lived goroutine that owns that request until Send returns; Serve
// meanwhile drains and encodes the next batch into the other request, and settles
// (acknowledges in the spool, releases Archived) only after the request returned,
// so acknowledgements advance strictly in order. Serve may be called again after
// it returns, never twice at once. Written, Pending, BadRows and SpoolStatus are
// safe to call from any goroutine at any time. ReadSpool is a plain function;
// Query and CountRows are plain functions, safe for concurrent use.
package ingest
