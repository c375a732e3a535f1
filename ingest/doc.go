// Package ingest archives telemetry samples into QuestDB and reads them back.
//
// It owns the archive table (default "samples"), the Writer that fills it from a
// telemetry subscription over ILP/HTTP through a durable spool, History (raw and
// downsampled queries of one channel, replay pages of all channels, and Settle:
// wait until everything published so far is queryable), and a small SQL helper
// (Query, CountRows) over QuestDB's HTTP /exec endpoint.
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
//   - At start the Writer replays everything after the acknowledged position. A torn
//     tail (a frame cut short, or failing its checksum, at the end of the last
//     segment) is truncated and counted; a bad frame inside an earlier segment skips
//     the rest of that segment, logged as an error and counted as lost bytes. An
//     unreadable ack file replays the whole spool (harmless: DEDUP).
//   - The directory is locked (flock on "lock") while a Writer uses it.
//   - Disk bound (SpoolMaxBytes): at 80% the Writer warns (log, spool_level 1). When
//     a batch does not fit, the spool is full (log at error, spool_level 2,
//     SpoolStatus().Full): the Writer stops draining its source, so new samples wait
//     in the hub's lossless queue in memory (nothing is dropped), until QuestDB's
//     acknowledgements bring the spool back under 80%.
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
// EventWriter is the same machinery (spool, retries, DEDUP, dead letters) for
// event rows (Event: time, source, kind, seq, message, detail) in their own table.
// Record queues without blocking. DeviceEvents feeds it from the device manager's
// state watch; the alarm engine can record alarm transitions with its own
// EventWriter (own table, own spool directory: one Writer per spool).
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
// _spool_corrupt_bytes_total.
//
// # Concurrency
//
// Serve runs the Writer's goroutine: it alone drains the source and owns the
// QuestDB senders, the spool and the dead-letter file, so nothing in the write path
// is locked. While a backlog is flushed, one request at a time is in flight from a
// short-lived goroutine that owns that request's sender until Flush returns; Serve
// meanwhile drains and encodes the next batch into the other sender, and settles
// (acknowledges in the spool, releases Archived) only after the request returned,
// so acknowledgements advance strictly in order. Serve may be called again after
// it returns, never twice at once. Written, Pending, BadRows and SpoolStatus are
// safe to call from any goroutine at any time. ReadSpool is a plain function;
// Query and CountRows are plain functions, safe for concurrent use.
package ingest
