// Package cluster lets several Switchyard nodes share one plant over NATS
// JetStream: each device is owned by exactly one node at a time through a
// lease, the owner publishes its samples to the cluster, any node serves any
// subscription and routes commands to the owner, one archiver writes each
// sample, and alarm state lives in the cluster so that it survives failover.
// Without a cluster configuration none of this runs.
//
// # NATS resources (prefix "switchyard" by default)
//
//   - key-value bucket <prefix>-leases: one key per device (its Token), value
//     {node, incarnation, acquired_ns}; the bucket's max age is the lease TTL.
//   - key-value bucket <prefix>-nodes: one key per node, the node's
//     registration (selectors, address, start time), same TTL.
//   - key-value bucket <prefix>-alarms: alarm state per device and channel.
//   - stream <prefix>-telemetry: subjects <prefix>.s.<device> (sample
//     batches, see Batch), <prefix>.d.<device> (DeviceEvent, JSON) and
//     <prefix>.a.<device> (alarm transitions, in the wiring's wire form),
//     bounded by Retention (max age and bytes, oldest discarded).
//   - durable consumer <prefix>-archiver on <prefix>.s.>, shared by every
//     node's Archiver.
//   - request subjects <prefix>.cmd.<device>, <prefix>.abort.<device> and
//     <prefix>.alarm.<device>, answered by the owner.
//
// # Leases: why bucket TTL and not per-key TTL
//
// nats-server 2.11+ and nats.go v1.56 support per-message TTLs in a
// key-value bucket (KeyTTL on Create, with LimitMarkerTTL on the bucket), but
// nats.go's Update (the compare-and-set a renewal needs) writes without a
// TTL, so a renewed key would never expire. So the lease bucket expires every
// key after its max age (the bucket's TTL) counted from its last write: a
// renewal is an Update at the last revision, which restarts that clock. With
// LimitMarkerTTL set, the server leaves a marker when it expires a key, so
// every node's watch sees the expiry at once (measured on nats-server 2.15.3:
// the marker arrives between TTL and TTL + 0.25 s after the last write, never
// before TTL). Every node must use the TTL the bucket has: Open refuses to
// join a cluster whose bucket was made with another.
//
// A device goes to a node by Create (only if absent); a node renews all its
// leases every RenewEvery; a node that shuts down stops its devices and deletes
// their leases (others take over at once); a node that dies leaves them to
// expire. Placement (Plan) is a pure function every node computes alike:
// eligible nodes only (Selector globs on device tags), current owners kept,
// counts balanced within one. The planned node claims a free device at once,
// any other eligible node after ClaimGrace (the planned node may be dead but
// not expired yet). A node releases a few devices per round that the plan gives
// to another live node (handoff: stop, then delete the lease).
//
// # Fencing: never two nodes polling one device
//
// A lease stored by a write sent at time s expires on the server no earlier
// than s + LeaseTTL (the server stamps the write after it was sent). A node
// records, for each lease, the send time of the last write the server
// confirmed, and stops the device by
//
//	fence = s + LeaseTTL - StopMargin
//
// unless a later renewal was confirmed. Every request's deadline is cut to the
// earliest fencing deadline, so a request that hangs (a black-holed
// connection) cannot delay a fence. StopDevice must finish within StopMargin;
// a stop that finishes after s + LeaseTTL is a fence overrun (counted,
// OnFenceOverrun). Another node can only Create the key after it expired, that
// is after s + LeaseTTL, so the old owner's stop precedes the new owner's
// start by at least StopMargin minus the stop's duration. Defaults: LeaseTTL
// 3 s, RenewEvery 750 ms, StopMargin 1 s, so a node fences after about two
// failed rounds and a dead node's devices are taken over about LeaseTTL (plus
// up to 0.25 s) after its last renewal. Assumptions: clock rates (not clock
// values) of the server and the nodes agree within the margin; the server's
// wall clock does not jump forward.
//
// Publishing is fenced too: each batch is published with the expected last
// sequence of its subject, so a node that lost a device cannot append behind
// the new owner. Numbering is the publisher's: a new owner reads the subject's
// last batch (which carries every channel's latest sample) and continues each
// channel's seq, so a device keeps one duplicate-free, gap-free sequence per
// channel across owners. Samples a cut-off node polled before fencing, that a
// later owner's batch overtook (epochs are lease revisions and grow), are
// discarded and counted (PublisherStats.Discarded): they could not have
// reached anyone in order. The publisher holds at most MaxPending samples (a
// million by default); past that Publish takes no more, and its caller (the
// node's lossless hub subscription) keeps them, holding the devices back at its
// own bound, so a stream that is down or slow never grows memory without limit.
//
// # Commands
//
// A Router sends a command as a request to <prefix>.cmd.<device> with the
// caller's deadline (absolute, in a header) and identity. Only the owner
// subscribes (a plain subscription: a queue group would let a cut-off node
// that the server still thinks alive swallow requests). No subscriber: the
// request fails at once with *FailoverError (reason DEVICE_IN_FAILOVER),
// nothing executed. The owner's executor errors come back as *RemoteError with
// the reason the owner's error mapping gave. No answer within the deadline
// (the owner died with the command in progress): *NoAnswerError, which says
// the command may have run. Nothing is ever sent twice.
//
// # Alarms
//
// The owner's alarm engine evaluates a device's alarms. After each
// transition the owner saves the alarm's state (AlarmStore: what the next
// owner restores, and the whole alarm for any node to list) and publishes
// the transition to the stream (Publisher.PublishAlarm; every node's
// Reader.WatchAlarms). An operator action on an alarm (AlarmAction) goes to
// the owner like a command (Router.Alarm), answered by the owner's
// Executor.Alarm with the alarm after it. The cluster carries alarms as
// bytes: their wire form is the wiring's (the API's messages).
//
// # Replay
//
// Reader.Replay serves a replay on any node: the archive (History) for what
// is older than the stream's first message, then the stream up to its last
// message at the call. Where the two overlap, a sample is given once: a
// repeat is a sample newer by neither seq nor time than the last one given
// of its channel (a channel whose numbering started again has newer times).
//
// # Archive
//
// Every node may run an Archiver; they share one durable consumer, so each
// batch goes to one archiver at a time and is acknowledged only after the
// archive confirmed it. A batch whose archiver died is redelivered to another
// after AckWait; QuestDB's DEDUP keys make the repeat harmless. The stream's
// retention must outlast the longest archive outage (View shows the lag).
//
// # Concurrency
//
// Node, Publisher and Archiver are Serve(ctx) services that stop when ctx ends
// and return after their goroutines; Responder and Owner start goroutines per
// request and announcement, and Wait for them. Everything else is safe for
// concurrent use.
package cluster
