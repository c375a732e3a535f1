// Package telemetry owns the Sample model and the Hub that fans samples out from
// device processes to every consumer: the archive writer, the alarm engine and the
// API's live subscriptions.
//
// # Concurrency contract
//
// Publish never blocks on a viewer. It takes each subscription's short queue lock
// (every queue is a feed.Queue), appends, and wakes the consumer through a
// 1-buffered channel with a non-blocking send, so a thousand device processes can
// publish while a subscriber is stalled.
//
// Each Subscription has a bounded queue (in samples, and optionally in bytes) and
// one of three overflow policies, chosen when it subscribes:
//
//   - DropOldest (live viewers): when the queue is full the oldest queued sample is
//     discarded and counted; Dropped tells the subscriber how many it lost, so a
//     client can show that it fell behind.
//   - Squash (live API subscriptions): while the bounded queue has room every
//     sample is kept; when it is full the queue is squashed to the latest sample
//     per channel and the removed samples are counted (Squashed), so a slow GUI
//     falls back to "latest value of each channel" and is told how much it skipped.
//     Only a queue holding more channels than its capacity drops (Dropped).
//   - Lossless (the archive, the alarm engine): nothing is dropped and the queue
//     never grows past its bound (about a million samples by default): at the
//     bound, Publish waits until the consumer makes room (back-pressure on the
//     publishing device, counted in switchyard_hub_backpressure_waits_total). The
//     consumer that asks for this promises to drain it (the archive writer moves
//     samples into its spool; it stops only when its spool is full), and the
//     Watchdog reports a subscription at its bound (log at error, status, and the
//     system channel switchyard/hub_backpressure the alarm engine raises).
//     PublishNoWait is for the server's own health samples, which pass the bound
//     rather than wait.
//
// A subscription can also end itself: with StallAfter, a consumer whose queue
// stayed full and undrained that long is cut off (Err returns ErrStalled, OnStall
// is called), so a client that stopped reading costs nothing more.
//
// The hub also keeps the latest sample of every channel for GetLatest.
//
// # Watchdog
//
// The hub has no goroutine. A Watchdog (watch.go) is the process that watches
// it, meant to run under a supervisor: every Period it reads each live
// subscription's depth and Drain count under the subscription's lock (as Len
// does, so publishers wait no longer than for Len), keeps the queue depth
// gauge current for consumers that stopped draining, reports a subscription
// whose queued samples have had no Drain for StallAfter (stalled), a Lossless
// subscription deeper than LosslessWarnDepth (over limit) and one at its bound
// holding publishers back, with one
// log line when an episode starts and one when it ends. Status and Health give
// the result of the last check; OnStatus hears only of changes in which
// subscriptions are in trouble or in how many there are.
//
// Every copy of one published sample (in each queue and among the latest values)
// shares one encoding cache, so a consumer that sends a sample to many clients
// encodes it once (Sample.Encoded, safe for concurrent use and never blocking).
//
// Filter (filter.go) applies a subscriber's display deadband and rate cap on the
// subscriber's own goroutine; it is not safe for concurrent use.
//
// # Streams
//
// A Stream (stream.go) is one API subscriber's view of the hub, everything a
// Subscribe call does but the encoding: the batch window and maximum batch,
// heartbeats on an idle stream, the deadband and rate cap with the due times of
// held samples, device states interleaved after the samples published before
// them, and the replay of the archive (Since) joined to the live samples with no
// gap and no repeat per channel: by time for an Archive (QuestDB's
// microseconds), by seq for a Replayer (a cluster's stream, numbered alike for
// every node). Next(ctx) returns one Batch at a time; time
// comes from an injected Clock, so its tests run in synctest bubbles. A Stream
// is owned by one goroutine. What it holds is bounded and counted (Bytes, safe
// from any goroutine): its queue (MaxBytes), the samples it took out of it
// until their batch was sent (it takes at most MaxBytes into a batch), and one
// page of the archive at a time while it replays. OnStall tells its owner when
// its subscription ended for not being read, so that the owner can end a send
// stuck on its client.
//
// The model also has DeviceStatus: a device's connection state as the alarm
// engine and the device-event archive see it, without the device manager.
package telemetry
