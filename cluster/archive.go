package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard/switchyard/telemetry"
)

// Appender is the archive the archiver writes into.
type Appender interface {
	// Append stores samples and returns nil only once they are durable: QuestDB
	// acknowledged them (or a durable spool that will deliver them holds them).
	// Samples may come again after a failure; the archive must make a repeat
	// harmless (QuestDB's DEDUP keys on ts, device, channel, seq).
	Append(ctx context.Context, samples []telemetry.Sample) error
}

// ArchiverOptions configures an Archiver. The zero value works.
type ArchiverOptions struct {
	// Batch is the most stream messages taken at once. Default 256.
	Batch int
	// AckWait is how long a message taken by an archiver that neither
	// acknowledged nor refused it (it died) waits before the stream gives it to
	// another archiver. Default 30s. Must exceed the longest Append.
	AckWait time.Duration
	// RetryDelay is how long a batch the archive refused waits before it is
	// offered again (to any archiver). Default 1s.
	RetryDelay time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// Archiver moves samples from the stream into the archive. Every node may run
// one: they share one durable consumer, which gives each message to one
// archiver at a time; a message is acknowledged only after Append returned nil,
// so the death of an archiving node loses nothing (its messages go to another
// archiver after AckWait), and a repeat is made harmless by the archive.
type Archiver struct {
	c    *Cluster
	app  Appender
	opts ArchiverOptions
	log  *slog.Logger

	mu    sync.Mutex
	stats ArchiverStats
}

// ArchiverStats counts what an archiver did.
type ArchiverStats struct {
	Messages, Samples uint64
	// Refused counts batches the archive failed (offered again later).
	Refused uint64
	// Damaged counts messages that could not be decoded (terminated, logged).
	Damaged uint64
}

// NewArchiver makes an archiver.
func NewArchiver(c *Cluster, app Appender, opts ArchiverOptions) *Archiver {
	if opts.Batch <= 0 {
		opts.Batch = 256
	}
	if opts.AckWait <= 0 {
		opts.AckWait = 30 * time.Second
	}
	if opts.RetryDelay <= 0 {
		opts.RetryDelay = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Archiver{c: c, app: app, opts: opts, log: opts.Logger}
}

// Stats returns the archiver's counters.
func (a *Archiver) Stats() ArchiverStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

func (a *Archiver) consumer(ctx context.Context) (jetstream.Consumer, error) {
	return a.c.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       a.c.Names.Archiver(),
		Description:   "Switchyard archiver: every sample batch into the archive, acknowledged once stored",
		FilterSubject: a.c.Names.prefix() + ".s.>",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       a.opts.AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxAckPending: 64 * a.opts.Batch,
	})
}

// Serve archives until ctx ends.
func (a *Archiver) Serve(ctx context.Context) error {
	var cons jetstream.Consumer
	for cons == nil {
		var err error
		if cons, err = a.consumer(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("cluster: archiver consumer (will retry)", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(a.opts.RetryDelay):
			}
		}
	}
	prefix := a.c.Names.prefix() + ".s."
	for ctx.Err() == nil {
		batch, err := cons.Fetch(a.opts.Batch, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("cluster: archiver fetch", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(a.opts.RetryDelay):
			}
			continue
		}
		var msgs []jetstream.Msg
		var samples []telemetry.Sample
		for m := range batch.Messages() {
			dev, err := ParseToken(strings.TrimPrefix(m.Subject(), prefix))
			var b Batch
			if err == nil {
				b, err = DecodeBatch(dev, m.Data())
			}
			if err != nil {
				md, _ := m.Metadata()
				var seq uint64
				if md != nil {
					seq = md.Sequence.Stream
				}
				a.log.Error("cluster: archiver: a damaged batch cannot be archived; terminated", "subject", m.Subject(), "stream_seq", seq, "err", err)
				_ = m.TermWithReason("damaged batch")
				a.mu.Lock()
				a.stats.Damaged++
				a.mu.Unlock()
				continue
			}
			msgs = append(msgs, m)
			samples = append(samples, b.Samples...)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := a.app.Append(ctx, samples); err != nil {
			a.log.Warn("cluster: archive refused a batch; it will be offered again", "messages", len(msgs), "err", err)
			for _, m := range msgs {
				_ = m.NakWithDelay(a.opts.RetryDelay)
			}
			a.mu.Lock()
			a.stats.Refused++
			a.mu.Unlock()
			continue
		}
		var ackErr error
		for _, m := range msgs {
			// A lost acknowledgement only re-sends what the archive holds.
			if err := m.Ack(); err != nil && ackErr == nil {
				ackErr = err
			}
		}
		if ackErr != nil {
			a.log.Warn("cluster: archiver acknowledgement (the batch may be archived again; harmless)", "err", ackErr)
		}
		a.mu.Lock()
		a.stats.Messages += uint64(len(msgs))
		a.stats.Samples += uint64(len(samples))
		a.mu.Unlock()
	}
	return nil
}

// Lag is how far the archive is behind the stream.
type Lag struct {
	// Pending: messages not yet delivered to any archiver.
	Pending uint64
	// Unacked: messages delivered but not yet acknowledged.
	Unacked int
	// Redelivered: messages delivered more than once and not yet acknowledged.
	Redelivered int
}

// ArchiverLag reads the archiver consumer's lag; no consumer yet: an error.
func (c *Cluster) ArchiverLag(ctx context.Context) (Lag, error) {
	cons, err := c.stream.Consumer(ctx, c.Names.Archiver())
	if err != nil {
		return Lag{}, fmt.Errorf("archiver consumer: %w", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return Lag{}, err
	}
	return Lag{Pending: info.NumPending, Unacked: info.NumAckPending, Redelivered: info.NumRedelivered}, nil
}
