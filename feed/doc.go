// Package feed is the one queue between a producer that must never wait for a
// slow consumer and that consumer: a bounded, mutex-guarded queue per consumer
// with a named overflow policy, counted losses, and a coalesced wake-up.
//
// Every fan-out of Switchyard is built from it: the telemetry hub's
// subscriptions, the supervisor's event subscriptions, the alarm engine's
// watches, the device state feed and the event archive's intake.
//
// # Policies
//
// A Queue has a bound in items (Capacity) and, optionally, in bytes (MaxBytes
// with Options.Size). What happens when an item arrives at a full queue is its
// Policy:
//
//   - DropOldest: the oldest queued items are discarded and counted (Dropped).
//     For readers that want the most recent history (supervision events,
//     alarm transitions to a panel).
//   - Squash: the queue is reduced to the latest item of each key, in the
//     order of those latest items, and the removed items are counted
//     (Squashed); only a queue holding more keys than its bound also drops the
//     oldest (Dropped). For live viewers, which must end on the latest value
//     of every channel.
//   - LatestPerKey: the queue never holds two items of one key: a new item
//     replaces the queued one of its key in place (Squashed), so a reader sees
//     each key's latest state in the order the keys first changed. For state
//     feeds (device states).
//   - Lossless: nothing is dropped. TryPush drains what fits and says what did
//     not; Push waits for room (back-pressure on the producer) until the
//     consumer drains, the queue is closed or the context ends. The queue never
//     grows past its bound. For the archive and the alarm engine, which must
//     see every item.
//
// # Wake-ups
//
// Ready returns a channel with a buffer of one that receives a value whenever
// items may be waiting: one receive may stand for many pushes, so a consumer
// drains everything (Drain with max <= 0, or until Drain returns nothing). Drain
// leaves a wake-up behind when it leaves items queued.
//
// # Stalls
//
// Stats reports how long the queue has been at its bound without a Drain
// (FullFor): a consumer that stopped reading. Options.StallAfter makes the
// queue end itself then: the next push that finds it full closes it with
// ErrStalled, calls Options.OnStall, and Err reports it.
//
// # Concurrency
//
// All methods are safe for concurrent use. Pushes from many goroutines are
// serialised by the queue's lock, which is held only to copy items in or out;
// the key, size and fill functions run under it and must be cheap.
package feed
