// Package server owns Switchyard's API layer: it serves the services of
// api/switchyard/v1 (DeviceService, TelemetryService, SystemService, and
// AlarmService when Options.Alarms is set), translates between generated messages
// and the domain types of devicemgr, telemetry, alarm and supervisor, validates requests and maps errors to status codes. It holds no
// domain state of its own.
//
// # One implementation, two transports
//
// Each RPC is written once, as a method against plain request and response
// messages and, for server streams, a streamOut, and is wired in one place: the
// rpc table (Server.rpcs, rpc.go). Both transports are built from that table by
// two generic functions (unary, serverStream), not by per-RPC adapters: for
// grpc-go the table becomes grpc.ServiceDesc values whose handlers decode the
// request themselves (so a request that does not parse is INVALID_ARGUMENT, not
// grpc-go's INTERNAL) and run the interceptor chain; for connect-go it becomes
// connect.NewUnaryHandler / NewServerStreamHandler per procedure, with the
// method's schema. The generated *_grpc.pb.go and *.connect.go server code is
// not used (the generated clients are); the generated descriptors are.
//
//   - the gRPC port (default 127.0.0.1:7400): grpc-go for native gRPC clients
//     (Python grpcio, grpcurl), server reflection;
//   - the HTTP port (default 127.0.0.1:7480), HTTP/1.1 and h2c (HTTP/2 over TLS
//     with tls:): connect-go handlers speaking the Connect, gRPC and gRPC-Web
//     protocols, /healthz (200 "ok" while serving, 503 during shutdown), /metrics
//     (the Options Gatherer) and an optional web page at /.
//
// Why two transports stay: grpc-go is what native gRPC clients and grpcurl are
// tested against (keepalive enforcement, reflection, flow control), connect-go is
// what browsers need (Connect and gRPC-Web over HTTP/1.1). Why not connect-go's
// generated handlers for one and grpc-go's for the other: that is the three
// copies of every RPC this replaces. What the two share, written once:
//
//   - the policy layer, the gate (gate.go): identity → role → policy table →
//     limits → validation → handler → request log and audit record. On the gRPC
//     port it is a grpc-go interceptor chain (go-grpc-middleware's auth and
//     selector run the gate's identify; gate_grpc.go), on the HTTP port one
//     Connect interceptor (gate_connect.go); both only carry a transport's
//     credentials and messages to the same functions;
//   - validation: the contract's protovalidate rules, checked by the gate;
//   - error mapping: statusOf (errors.go), the one mapping from errors to code and
//     ErrorInfo reason, applied by grpcError and connectError at each transport's
//     edge;
//   - recovery: a handler's panic is logged with its stack by the gate's panicked
//     and answered INTERNAL on either port; the server goes on serving;
//   - health: grpc.health.v1 is one implementation (health.go) in the rpc table,
//     served on both ports.
//
// The codecs stay two small types (codec.go) because grpc-go and connect-go
// define different codec interfaces; both pass pre-encoded Subscribe batches
// through and otherwise use the standard protobuf encoding.
//
// # Security
//
// See the README's "Security" section for the model. Authentication is on when
// Options.Auth has tokens or certificate roles; then every call is identified
// (token, else verified client certificate, else anonymous), and authorize
// decides from the policy table (policy.go; default deny: an RPC missing there
// is refused to everyone). SendCommand checks the command's role from the device
// model in the handler. Without authentication every caller is anonymous with
// role admin, and Listen refuses non-loopback addresses unless TLS and
// authentication are on or Options.Insecure says so (Serve then warns at every
// start). State-changing RPCs are audited (audit.go): logged, handed to
// Options.Audit (the QuestDB archive) and streamed by WatchAudit.
//
// Limits (limits.go, Options.Limits): streams per connection, per identity and
// in total (TOO_MANY_STREAMS); commands per second per identity and commands in
// flight per identity per device (RATE_LIMITED), so one client's flood cannot
// fill a device's mailbox; a request's size after decompression on both ports;
// on the HTTP port a deadline for request bodies, allowed Host names and CORS
// origins (hardening.go); on both ports a cap on open connections, lowered so
// that the two ports leave Limits.ReservedDescriptors of the process's
// descriptor limit for instruments, QuestDB and files (past the cap, clients
// wait in the kernel's accept queue). TLS material (tls.go) is re-read when its
// files change. Errors and logs quote at most 64 bytes of a client's input.
//
// # Keepalive (gRPC port)
//
// Clients may ping at most every 10 s (KeepaliveMinPingInterval), also without
// active calls; pinging more often gets the connection closed with GOAWAY
// "too_many_pings". Python grpcio clients should set grpc.keepalive_time_ms to
// 10000 or more and grpc.keepalive_permit_without_calls as they like. The server
// pings a connection idle for 30 s (KeepaliveTime) and closes it if the ping is not
// answered within 10 s (KeepaliveTimeout).
//
// # Errors
//
// All errors are mapped in one function (errors.go); messages keep the wrapped
// detail, which names the device, command or argument:
//
//	request validation               InvalidArgument  "selector.devices[2]: bad glob pattern ..."
//	a request that does not decode   InvalidArgument  "malformed request: ..."
//	no or unknown credentials        Unauthenticated  (reason UNAUTHENTICATED)
//	role too low, no policy entry    PermissionDenied (reason PERMISSION_DENIED)
//	a stream limit                   ResourceExhausted (TOO_MANY_STREAMS)
//	a command rate or share limit    ResourceExhausted (RATE_LIMITED)
//	unknown channel (SetAlarmLimits) NotFound         (CHANNEL_NOT_FOUND)
//	a handler's panic                Internal         "internal error"
//	devicemgr.ErrNotFound            NotFound
//	devicemgr.ErrDeviceRemoved       FailedPrecondition (DEVICE_REMOVED)
//	config.ErrInvalid (a reload)     InvalidArgument  (CONFIG_INVALID), every problem in the message
//	no configuration to reload       Unimplemented    (NOT_SUPPORTED)
//	devicemgr.ErrUnknownCommand      InvalidArgument
//	devicemgr.ErrBadArgument         InvalidArgument
//	devicemgr.ErrNotConnected        Unavailable
//	devicemgr.ErrTimeout             DeadlineExceeded
//	alarm.ErrNotFound                NotFound
//	alarm.ErrBadRequest              InvalidArgument
//	alarm.ErrNotRunning              Unavailable
//	server shutting down (streams)   Unavailable      "server is shutting down"
//	context.Canceled                 Canceled
//	context.DeadlineExceeded         DeadlineExceeded
//	anything else                    Internal
//
// # Streams
//
// Subscribe is a telemetry.Stream: everything it does but the encoding is in the
// telemetry domain, and this package only translates the request into the
// stream's options and each batch into a response. Its hub subscription has the
// Squash policy and room for 8192 samples and Limits.SubscriberQueueBytes
// (when full, squashed to the latest sample per channel). A stream holds its
// queue, what it took out of it into the batch it makes (at most
// SubscriberQueueBytes and a sample, or all that was queued when a device state
// changes) and the response being sent, counted in
// switchyard_api_stream_held_bytes; the transport's buffer comes on top (on the
// gRPC port grpc-go accepts up to 64 KiB of responses and one more per stream
// before a send waits for the client, in pooled buffers of up to twice their
// size; grpc-go's write quota is fixed, and its window and buffer options bound
// what clients send or whole connections, so it is bounded through the streams
// per connection, Limits.http2Streams, and the connections per port). A
// stream whose queue stays full and unread for Limits.StreamStallTimeout ends
// with RESOURCE_EXHAUSTED, reason STREAM_STALLED, even when its handler is
// stuck in a send to a client that reads nothing: the transport ends it from
// outside (abort.go; on the HTTP port by resetting it). Its selector globs and
// tags are matched per sample (tags against the device's tags as they are then,
// Devices.Tags), so a device a configuration reload adds or retags streams to the
// subscriptions it matches without resubscribing. It sends a batch when max_batch
// samples (default 1000, at most 10000) are
// waiting or batch_window_ms (default 50, at most 60000) after the first sample of
// the batch arrived. Every response carries the subscription's cumulative squashed
// and dropped counts. The deadband and max_rate_hz apply per channel
// (telemetry.Filter); initial_values sends the latest values first, device_states
// sends device states first and then each change (after the samples published
// before it), and heartbeat_ms sends an empty heartbeat response on an idle stream.
// WatchAlarms sends alarm transitions only, filtered by device, channel and group;
// its queue drops the oldest beyond 4096 unread transitions and counts them. WatchDevices sends the
// current state of every selected device, then each change; a slow watcher skips
// intermediate states but always ends on the current one (devicemgr.StateFeed),
// counted in skipped. A device a reload removes is sent once more with removed
// set; each applied reload (an EventReconfigured of the tree, when the Tree is
// an EventSource) is sent as a reload message after the changes it made.
//
// With since_ns both watches first replay the archive (Options.AlarmArchive:
// the alarm_events table; Options.DeviceArchive: device_events), the way
// Subscribe does (replay.go): the watch exists before the archive is settled
// (everything published before is readable), the archived items from since_ns
// on are sent marked replayed, one response with replay_end closes the
// replay, and the live items the replay already sent are skipped. Alarm
// transitions of one engine have unique, increasing times, so one watermark
// joins them (alarm.Watch.After). Device changes are joined per device
// (deviceJoin): the live watch keeps every change up to 4096 (WatchEvery), a
// device whose changes continued after the archive was read is left out of
// the current states so that its changes follow in order, and the change a
// replayed message stood for is not sent again; the archive's last state of a
// device the server no longer has, when STOPPED, is sent with removed set.
// Reloads are not replayed. Without an archive, or when it fails or does not
// answer within Limits.ReplayTimeout, replay_end says the replay is incomplete
// and the watch goes live: an operator is never kept from live alarms by
// QuestDB. A cluster node is given no replay: its archive holds its own
// engine's and devices' records while its watches follow the whole cluster,
// and its WatchAlarms merges every owner's transitions out of time order
// (alarm.Watch.After has no join point), so a since_ns there gets a replay_end
// with complete false and no live_after_ns. Supervision events are not
// archived: WatchSupervisionEvents has no replay.
//
// # Configuration
//
// ReloadConfig and GetConfig serve Options.Config (a *config.Reloader): a reload
// runs as the caller, whose identity name is who reloaded, and goes to its end
// even if the caller leaves; it is audited like every state-changing RPC.
//
// Subscribe encodes each published sample once, however many streams send it: the hub gives every copy of a sample one shared cache
// (telemetry.Sample.Encoded), and a batch is assembled from the cached bytes plus
// the stream's own counters (encode.go) and sent as is by the gRPC port's codec
// and by connect-go's binary
// proto codec (codec.go). Clients decode exactly the bytes proto.Marshal would
// give; connect and gRPC-Web JSON streams are marshalled as usual.
//
// Both streams send their response headers as soon as the hub subscription (or the
// state watch) exists, before the first message: a client that waits for the
// headers (grpc-go's Header, connect-go's Subscribe call returning) sees every
// sample or change that happens after. A stream ends when the client cancels or
// when the server shuts down (Unavailable, "server is shutting down").
//
// # Concurrency and life cycle
//
// New checks and keeps the options; Listen opens both ports (so tests can use
// port 0 and ask GRPCAddr and HTTPAddr); Serve builds fresh transports, health
// and services and serves until its context ends. Serve may run again after it
// returned (the supervisor restarting the API child) on the same ports; Close
// releases them. Shutdown then goes:
// health reports NOT_SERVING and /healthz 503; every open stream ends with
// Unavailable; grpc-go GracefulStop and http.Server.Shutdown run in parallel, each
// bounded by Options.ShutdownTimeout (default 5 s) before the remaining
// connections are closed; Serve returns after every goroutine it started has
// exited. Other streams on the gRPC port (health Watch, reflection) and health
// Watch on the HTTP port are ended at shutdown too, so they cannot hold it up.
// Unary calls in flight get up to ShutdownTimeout to finish. Handlers run
// concurrently; the Devices, Tree and telemetry.Hub given to New are required and
// must be safe for concurrent use.
package server
