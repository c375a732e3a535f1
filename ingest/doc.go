// Package ingest archives telemetry samples into QuestDB and reads them back.
//
// It owns the archive table (default "samples"), the Writer that fills it from a
// telemetry subscription over ILP/HTTP, and a small SQL helper (Query, CountRows)
// over QuestDB's HTTP /exec endpoint for tests and history queries.
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
// # Delivery guarantee
//
// Sending is at-least-once: a batch is kept in memory until QuestDB acknowledges it,
// and re-encoded and re-sent after a backoff (capped, jittered, exponential) for as
// long as the failure is a transport error or any answer but 400/413 (5xx, 421, and
// also 401/403/404, which need an operator), without limit while Serve runs. A
// re-sent batch that QuestDB had already committed lands on the same DEDUP keys, so
// the table holds each sample exactly once.
//
// The limits of that guarantee:
//   - The retry buffer is memory only. A crash or kill loses every sample that was
//     drained from the subscription but not yet acknowledged. A durable on-disk spool
//     will replace it; until then, the pending count (Writer.Pending and the
//     switchyard_ingest_pending_rows gauge) is what is at risk.
//   - While QuestDB is unreachable the Writer keeps draining its source into memory,
//     in order, so the hub's lossless queue stays short; memory grows with the outage.
//     Each attempt may block the Writer for the client's own short retry loop (2 s,
//     plus the request timeout on a hung server); the hub queues meanwhile.
//   - A request QuestDB answers 400 or 413 is split (at the line QuestDB blamed, or
//     in halves) until the offending rows are alone.
//   - A row QuestDB rejects as malformed even alone (HTTP 400, e.g. a value whose
//     type conflicts with the column) is logged with QuestDB's message (up to ten per
//     batch) and counted in switchyard_ingest_bad_rows_total; the rest of the batch
//     lands. The rejected row is not stored anywhere else yet (a dead-letter file
//     comes later).
//   - When Serve's context ends it drains the source once more and keeps trying to
//     flush everything pending for Options.ShutdownTimeout. What is still unsent after
//     that is logged and reported by Serve's error (errors.Is ErrNotArchived). Samples
//     published after that last drain are not the Writer's: stop producers first.
//
// # Concurrency
//
// Serve runs the Writer's only goroutine: it alone drains the source and owns the
// QuestDB sender, so nothing in the write path is locked. Serve may be called once.
// Written, Pending and BadRows are safe to call from any goroutine at any time. Query
// and CountRows are plain functions, safe for concurrent use.
package ingest
