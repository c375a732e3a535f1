package bench

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// subscriber is one gRPC Subscribe stream on every sample. It counts the samples
// whose timestamp falls in its window, their device → subscriber latency (receive
// time minus the sample's timestamp; same machine clock) and, with jitter on, the
// spread of intervals between consecutive samples of a channel.
type subscriber struct {
	slow   time.Duration // sleep after each received batch: a deliberately slow reader
	jitter time.Duration // expected interval between samples of a channel; 0: off

	conn   *grpc.ClientConn
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	from, to int64 // window of sample timestamps, ns; to == 0: open
	n        int64
	lat      Histogram
	jit      Histogram
	last     map[string]int64
	dropped  uint64 // the stream's latest dropped count
	dropFrom uint64 // dropped count when the window opened
	// squashed counts the samples the server's queue for this stream replaced
	// by a later sample of their channel (the API's streams squash rather than
	// drop); squashFrom when the window opened.
	squashed, squashFrom uint64
	err                  error
}

// subscribe opens a stream on its own connection to the server's gRPC address, as
// a separate client would. batchWindow is the server's batching window.
func subscribe(ctx context.Context, addr string, batchWindow time.Duration, slow, jitter time.Duration) (*subscriber, error) {
	conn, err := dial(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &subscriber{slow: slow, jitter: jitter, conn: conn, cancel: cancel, done: make(chan struct{}), from: -1, last: map[string]int64{}}
	stream, err := pb.NewTelemetryServiceClient(conn).Subscribe(ctx, &pb.SubscribeRequest{
		BatchWindowMs: uint32(batchWindow / time.Millisecond),
	})
	if err != nil {
		cancel()
		conn.Close()
		return nil, err
	}
	go s.run(stream)
	return s, nil
}

func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
}

func (s *subscriber) run(stream grpc.ServerStreamingClient[pb.SubscribeResponse]) {
	defer close(s.done)
	for {
		resp, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled {
				err = nil
			}
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		now := time.Now().UnixNano()
		s.mu.Lock()
		s.dropped, s.squashed = resp.GetDropped(), resp.GetSquashed()
		if s.from >= 0 {
			for _, smp := range resp.GetSamples() {
				ts := smp.GetTimestampNs()
				if ts < s.from || s.to > 0 && ts >= s.to {
					continue
				}
				s.n++
				s.lat.Observe(time.Duration(now - ts))
				if s.jitter > 0 {
					key := smp.GetDevice() + "/" + smp.GetChannel()
					if prev, ok := s.last[key]; ok {
						d := time.Duration(ts-prev) - s.jitter
						s.jit.Observe(max(d, -d))
					}
					s.last[key] = ts
				}
			}
		}
		s.mu.Unlock()
		if s.slow > 0 {
			time.Sleep(s.slow)
		}
	}
}

// open starts counting samples stamped at or after from.
func (s *subscriber) open(from time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.to = from.UnixNano(), 0
	s.n = 0
	s.lat, s.jit = Histogram{}, Histogram{}
	clear(s.last)
	s.dropFrom, s.squashFrom = s.dropped, s.squashed
}

// close stops counting samples stamped at or after to (samples stamped earlier that
// are still in flight keep counting until stats is called).
func (s *subscriber) closeWindow(to time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.to = to.UnixNano()
}

// subStats is a snapshot of a subscriber's window.
type subStats struct {
	n               int64
	lat, jit        Histogram
	drops, squashed int64
	err             error
}

func (s *subscriber) stats() subStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return subStats{n: s.n, lat: s.lat, jit: s.jit, drops: int64(s.dropped - s.dropFrom),
		squashed: int64(s.squashed - s.squashFrom), err: s.err}
}

// stop ends the stream, waits for its goroutine and closes the connection. It is
// idempotent.
func (s *subscriber) stop() {
	s.cancel()
	<-s.done
	s.conn.Close()
}
