// Package server owns Switchyard's API layer: it serves the services of
// api/switchyard/v1 (DeviceService, TelemetryService, SystemService, and
// AlarmService when Options.Alarms is set), translates between generated messages
// and the domain types of devicemgr, telemetry, alarm and supervisor, validates requests and maps errors to status codes. It holds no
// domain state of its own.
//
// # One implementation, two transports
//
// Each service is implemented once, against plain request and response messages
// and, for server streams, a send function. Thin adapters put that core behind
//
//   - the gRPC port (default 127.0.0.1:7400): grpc-go for native gRPC clients
//     (Python grpcio, grpcurl), with go-grpc-middleware logging (to the Options
//     Logger, one line per finished call) and recovery (a panic becomes Internal and
//     is logged with its stack), server reflection and grpc.health.v1;
//   - the HTTP port (default 127.0.0.1:7480), HTTP/1.1 and h2c: connect-go handlers
//     speaking the Connect, gRPC and gRPC-Web protocols, grpc.health.v1 through
//     connect-go, /healthz (200 "ok" while serving, 503 during shutdown), /metrics
//     (the Options Gatherer) and an optional web page at /.
//
// Requests are limited to 1 MiB on both ports. The HTTP port sets a read-header
// timeout of 10 s, an idle timeout of 2 min for connections without requests, and
// no read or write timeout, because streams are long. It sends
// no CORS headers: browsers should load the page from the same port.
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
//	devicemgr.ErrNotFound            NotFound
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
// Squash policy and room for 8192 samples and Options.Subscribe.MaxQueueBytes
// (when full, squashed to the latest sample per channel); a stream whose queue
// stays full and unread for Options.Subscribe.StallAfter ends with
// RESOURCE_EXHAUSTED, reason STREAM_STALLED. Its selector globs and tags are
// checked once per request (tags against the devices configured then). It sends a
// batch when max_batch samples (default 1000, at most 10000) are
// waiting or batch_window_ms (default 50, at most 60000) after the first sample of
// the batch arrived. Every response carries the subscription's cumulative squashed
// and dropped counts. The deadband and max_rate_hz apply per channel
// (telemetry.Filter); initial_values sends the latest values first, device_states
// sends device states first and then each change (after the samples published
// before it), and heartbeat_ms sends an empty heartbeat response on an idle stream.
// WatchAlarms sends alarm transitions only, filtered by device, channel and group;
// its queue drops the oldest beyond 4096 unread transitions and counts them. WatchDevices sends the
// current state of every selected device, then each change; a slow watcher skips
// intermediate states but always ends on the current one (devicemgr.StateFeed).
//
// Subscribe encodes each published sample once (proto.Marshal), however many
// streams send it: the hub gives every copy of a sample one shared cache
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
// New builds everything; Listen opens both ports (so tests can use port 0 and ask
// GRPCAddr and HTTPAddr); Serve serves until its context ends. Shutdown then goes:
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
