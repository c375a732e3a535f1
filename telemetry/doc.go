// Package telemetry owns the Sample model and the Hub that fans samples out from
// device processes to every consumer: the archive writer, the alarm engine and the
// API's live subscriptions.
//
// # Concurrency contract
//
// Publish never blocks on a consumer. It takes each subscription's short queue lock,
// appends, and wakes the consumer through a 1-buffered channel with a non-blocking
// send, so a thousand device processes can publish while a subscriber is stalled.
//
// Each Subscription has a bounded queue and one of two overflow policies, chosen when
// it subscribes:
//
//   - DropOldest (live viewers): when the queue is full the oldest queued sample is
//     discarded and counted; Dropped tells the subscriber how many it lost, so a
//     client can show that it fell behind.
//   - Lossless (the archive): the queue grows without bound instead of dropping; its
//     depth is exported as a metric. The consumer that asks for this promises to
//     drain it (the archive writer moves samples into its own retry buffer or spool).
//
// The hub also keeps the latest sample of every channel for GetLatest.
package telemetry
