package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// A handler stuck in a send to a client that reads nothing cannot end its
// stream itself: the send waits for the client's flow-control window. Each
// transport therefore gives a server stream a way to be ended from another
// goroutine (streamOut.abort), which a stalled Subscribe uses:
//
//   - gRPC port: the call's status is written on its transport stream at
//     once (what grpc-go does itself when a handler returns), which also
//     returns the blocked SendMsg. grpc-go queues the status behind the data
//     it had accepted for the stream (at most its 64 KiB write quota and one
//     response), so a client that reads again gets that data and then the
//     status (RESOURCE_EXHAUSTED, STREAM_STALLED), and a resuming client
//     reconnects. Until it reads or goes, the transport keeps those bytes and
//     the HTTP/2 stream, which counts against the connection's concurrent
//     streams (Limits.http2Streams), so a client cannot pile up ended streams.
//   - HTTP port: the response's write deadline is set to now, which resets an
//     HTTP/2 stream (RST_STREAM) and fails an HTTP/1.1 connection. No status
//     can pass the data the client did not read there: the client sees the
//     reset; the log and switchyard_api_streams_stalled_total say why.

// grpcAbort returns the abort of a grpc-go server stream: it writes err's
// status on the stream's transport stream. Nil if the transport stream does
// not offer that (grpc-go's ServerTransportStream has WriteStatus beside the
// methods of its interface; a test holds the server to it): then a stuck send
// ends only when its client reads or goes.
func grpcAbort(ss grpc.ServerStream) func(error) {
	ts, ok := grpc.ServerTransportStreamFromContext(ss.Context()).(interface {
		WriteStatus(*status.Status) error
	})
	if !ok {
		return nil
	}
	return func(err error) { _ = ts.WriteStatus(status.Convert(grpcError(err))) }
}

// abortKey holds an HTTP request's abort in its context (httpAbortable).
type abortKey struct{}

// httpAbort returns the abort httpAbortable put in a request's context, nil
// if none.
func httpAbort(ctx context.Context) func(error) {
	f, _ := ctx.Value(abortKey{}).(func(error))
	return f
}

// httpAbortable gives every HTTP request an abort (see above): it sets the
// response's write deadline to now, while the handler runs.
func httpAbortable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		var mu sync.Mutex
		done := false
		abort := func(error) {
			mu.Lock()
			defer mu.Unlock()
			if !done { // a ResponseWriter must not be used once its handler returned
				_ = rc.SetWriteDeadline(time.Now())
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), abortKey{}, abort)))
		mu.Lock()
		done = true
		mu.Unlock()
	})
}
