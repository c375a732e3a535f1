package server

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/switchyard/switchyard/auth"
)

// Limits bound what clients may hold and do; the zero value of each field takes
// its default. They apply to both ports together.
type Limits struct {
	// StreamsPerConnection bounds the server streams (Subscribe, Watch*) open on
	// one connection. Default 100.
	StreamsPerConnection int
	// StreamsPerIdentity bounds the streams one identity holds open over all its
	// connections (callers without credentials count per client host). Default 256.
	StreamsPerIdentity int
	// Streams bounds the streams open on the whole server. Default 1024.
	Streams int
	// CommandRate is how many commands per second one identity may send
	// (SendCommand; a token bucket of CommandBurst, forgotten once it is full
	// again, so identities that come and go hold no memory). Default 20.
	CommandRate float64
	// CommandBurst is the bucket's size: commands an idle identity may send at
	// once. Default 40.
	CommandBurst int
	// CommandsPerDevice bounds one identity's commands queued or running on one
	// device, so one client's flood leaves room in the device's mailbox for
	// everyone else's commands. Default 4.
	CommandsPerDevice int
	// MaxConnections bounds the open connections of each port; further clients
	// wait in the kernel's accept queue. Default 1000, lowered at start so that
	// both ports together leave ReservedDescriptors of the process's descriptor
	// limit free.
	MaxConnections int
	// ReservedDescriptors are kept free of API connections for instruments,
	// QuestDB and files. Default 512.
	ReservedDescriptors int
	// BodyTimeout bounds reading a request's body on the HTTP port (a slow-body
	// client is cut off). Default 10 s.
	BodyTimeout time.Duration
	// MaxRequestBytes bounds a request message after decompression on both
	// ports. Default 1 MiB.
	MaxRequestBytes int
	// SubscriberQueueBytes bounds a Subscribe stream's queue in the hub in bytes
	// (telemetry.SampleSize); past it the queue squashes to the latest value per
	// channel, as at its bound in samples. It bounds what the stream takes out
	// of its queue into a batch too, so a stream holds at most about three
	// times this (queue, batch, response being sent; see
	// switchyard_api_stream_held_bytes) besides its transport's buffer. Default
	// telemetry.DefaultStreamBytes (8 MiB).
	SubscriberQueueBytes int64
	// StreamStallTimeout ends a Subscribe stream whose queue stays full and
	// unread this long (a client that stopped reading) with RESOURCE_EXHAUSTED,
	// STREAM_STALLED, at once, even while its handler waits in a send for the
	// client (abort.go): on the gRPC port the client gets the status after the
	// data it had been sent; on the HTTP port the stream is reset. Default
	// DefaultStreamStallTimeout: without it, every stalled stream would hold
	// its whole budget (about 3 × SubscriberQueueBytes) until its client went.
	StreamStallTimeout time.Duration
	// ReplayTimeout bounds how long a watch's replay (WatchAlarms and
	// WatchDevices with since_ns) may wait for the archive and read it; past
	// it, or when the archive fails for good, the watch goes live with its
	// replay_end saying the replay is incomplete, rather than keep an operator
	// without live alarms while QuestDB is down. Default 10 s.
	ReplayTimeout time.Duration
}

// Defaults of Limits.
const (
	DefaultStreamsPerConnection = 100
	DefaultStreamsPerIdentity   = 256
	DefaultStreams              = 1024
	DefaultCommandRate          = 20
	DefaultCommandBurst         = 40
	DefaultCommandsPerDevice    = 4
	DefaultMaxConnections       = 1000
	DefaultReservedDescriptors  = 512
	DefaultBodyTimeout          = 10 * time.Second
	DefaultMaxRequestBytes      = 1 << 20
	DefaultReplayTimeout        = 10 * time.Second
	DefaultStreamStallTimeout   = time.Minute
)

// withDefaults fills zero fields with their defaults.
func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.StreamsPerConnection, DefaultStreamsPerConnection)
	def(&l.StreamsPerIdentity, DefaultStreamsPerIdentity)
	def(&l.Streams, DefaultStreams)
	def(&l.CommandBurst, DefaultCommandBurst)
	def(&l.CommandsPerDevice, DefaultCommandsPerDevice)
	def(&l.MaxConnections, DefaultMaxConnections)
	def(&l.ReservedDescriptors, DefaultReservedDescriptors)
	def(&l.MaxRequestBytes, DefaultMaxRequestBytes)
	if l.CommandRate <= 0 {
		l.CommandRate = DefaultCommandRate
	}
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	if l.ReplayTimeout <= 0 {
		l.ReplayTimeout = DefaultReplayTimeout
	}
	if l.StreamStallTimeout <= 0 {
		l.StreamStallTimeout = DefaultStreamStallTimeout
	}
	return l
}

// unaryHeadroom is how many HTTP/2 streams a connection may have open beyond
// StreamsPerConnection: its unary calls, and its ended streams whose client has
// not yet read their end (see abort.go).
const unaryHeadroom = 100

// http2Streams is the concurrent HTTP/2 streams each connection may open on
// either port (SETTINGS_MAX_CONCURRENT_STREAMS): a client's calls past it wait
// in the client for one to end.
func (l Limits) http2Streams() uint32 { return uint32(l.StreamsPerConnection + unaryHeadroom) }

// errTooManyStreams: a stream limit is reached.
type errTooManyStreams struct{ which string }

func (e *errTooManyStreams) Error() string { return "too many streams: " + e.which }

// errRateLimited: an identity sends commands faster than its limit or holds its
// share of a device.
type errRateLimited struct{ why string }

func (e *errRateLimited) Error() string { return "rate limited: " + e.why }

// streamLimiter counts open streams per connection, per identity and in total.
type streamLimiter struct {
	lim    Limits
	mu     sync.Mutex
	total  int
	byConn map[string]int
	byID   map[string]int
}

func newStreamLimiter(l Limits) *streamLimiter {
	return &streamLimiter{lim: l, byConn: map[string]int{}, byID: map[string]int{}}
}

// identityKey is who a limit counts for: the identity's name, or for callers
// without credentials their host (each client machine its own share).
func limitKey(id auth.Identity, peer string) string {
	if id.Authenticated {
		return string(id.Method) + ":" + id.Name
	}
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		host = peer
	}
	return "anonymous@" + host
}

// admit counts a new stream of conn (the client's address: one per connection)
// by key, or refuses it. The returned function counts it closed.
func (s *streamLimiter) admit(conn, key string) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.total >= s.lim.Streams:
		return nil, &errTooManyStreams{which: fmt.Sprintf("the server has %d streams open (limits.streams)", s.total)}
	case s.byConn[conn] >= s.lim.StreamsPerConnection:
		return nil, &errTooManyStreams{which: fmt.Sprintf("this connection has %d streams open (limits.streams_per_connection)", s.byConn[conn])}
	case s.byID[key] >= s.lim.StreamsPerIdentity:
		return nil, &errTooManyStreams{which: fmt.Sprintf("this identity has %d streams open (limits.streams_per_identity)", s.byID[key])}
	}
	s.total++
	s.byConn[conn]++
	s.byID[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.total--
			dec(s.byConn, conn)
			dec(s.byID, key)
		})
	}, nil
}

func dec(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
		return
	}
	m[k]--
}

// commandLimiter is the per-identity command rate (a token bucket each) and the
// per-identity share of each device.
//
// A bucket left alone for refill (the time it takes to fill up from empty) is
// full, exactly what a new one would be, so it is evicted: at most once per
// refill, admit sweeps out every bucket idle that long. The buckets held are
// those of identities that sent a command within the last two refills, however
// many identities (or, without credentials, client hosts) came and went.
type commandLimiter struct {
	lim    Limits
	now    func() time.Time
	refill time.Duration // CommandBurst / CommandRate

	mu        sync.Mutex
	buckets   map[string]*bucket
	inFlight  map[[2]string]int // {identity key, device}
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newCommandLimiter(l Limits, now func() time.Time) *commandLimiter {
	if now == nil {
		now = time.Now
	}
	refill := time.Duration(float64(l.CommandBurst) / l.CommandRate * float64(time.Second))
	return &commandLimiter{lim: l, now: now, refill: refill, buckets: map[string]*bucket{}, inFlight: map[[2]string]int{}}
}

// sweep evicts the buckets that have been idle for a whole refill (full again),
// at most once per refill. c.mu held.
func (c *commandLimiter) sweep(now time.Time) {
	if now.Sub(c.lastSweep) < c.refill {
		return
	}
	c.lastSweep = now
	for key, b := range c.buckets {
		if now.Sub(b.at) >= c.refill {
			delete(c.buckets, key)
		}
	}
}

// admit takes a token from key's bucket and a place in its share of device, or
// refuses. The returned function gives the place back when the command is done.
func (c *commandLimiter) admit(key, device string) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.sweep(now)
	b := c.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(c.lim.CommandBurst), at: now}
		c.buckets[key] = b
	}
	b.tokens = min(float64(c.lim.CommandBurst), b.tokens+now.Sub(b.at).Seconds()*c.lim.CommandRate)
	b.at = now
	dk := [2]string{key, device}
	if c.inFlight[dk] >= c.lim.CommandsPerDevice {
		return nil, &errRateLimited{why: fmt.Sprintf("%d commands of this identity are already queued or running on device %s (limits.commands_per_device)", c.inFlight[dk], quote(device))}
	}
	if b.tokens < 1 {
		return nil, &errRateLimited{why: fmt.Sprintf("more than %g commands per second from this identity (limits.command_rate)", c.lim.CommandRate)}
	}
	b.tokens--
	c.inFlight[dk]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.inFlight[dk] <= 1 {
				delete(c.inFlight, dk)
			} else {
				c.inFlight[dk]--
			}
		})
	}, nil
}
