package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is a node's cluster configuration (the `cluster:` section).
type Config struct {
	// URLs of the NATS servers. Required.
	URLs []string
	// CredsFile is a NATS credentials file (JWT and seed). Default none.
	CredsFile string
	// User and Password, or Token, when the server wants them. Default none.
	User, Password, Token string
	// CAFile, CertFile and KeyFile set up TLS (a client certificate when the
	// last two are given). Default: plain TCP unless the URL says tls://.
	CAFile, CertFile, KeyFile string
	// Node is this node's name, unique in the cluster. Required.
	Node string
	// Selectors say which devices the node may own (by tag globs); none: all.
	Selectors []Selector
	// Prefix names the cluster's NATS resources; several clusters can share a
	// NATS server under different prefixes. Default "switchyard".
	Prefix string
	// Timing of the lease protocol.
	Timing Timing
	// Retention bounds the telemetry stream.
	Retention Retention
}

// Retention bounds the telemetry stream: whichever limit is reached first
// removes the oldest messages. Samples the archiver has not acknowledged are
// lost from the stream past these limits, so size them for the longest
// archive outage to ride out (the cluster view shows the archiver's lag).
type Retention struct {
	// MaxAge of a message. Default 24h.
	MaxAge time.Duration
	// MaxBytes of the whole stream. Default 1 GiB.
	MaxBytes int64
}

func (r Retention) withDefaults() Retention {
	if r.MaxAge <= 0 {
		r.MaxAge = 24 * time.Hour
	}
	if r.MaxBytes <= 0 {
		r.MaxBytes = 1 << 30
	}
	return r
}

// Connect opens a NATS connection for a node: it reconnects forever, and it
// does not buffer while disconnected (a publish then fails at once instead of
// going out late, after the node may have lost its leases).
func Connect(cfg Config, log *slog.Logger) (*nats.Conn, error) {
	if len(cfg.URLs) == 0 {
		return nil, errors.New("cluster.urls: at least one NATS URL is required")
	}
	if log == nil {
		log = slog.Default()
	}
	opts := []nats.Option{
		nats.Name("switchyard " + cfg.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.Timeout(2 * time.Second),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("cluster: disconnected from NATS", "node", cfg.Node, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("cluster: reconnected to NATS", "node", cfg.Node, "url", nc.ConnectedUrlRedacted())
		}),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.Token != "" {
		opts = append(opts, nats.Token(cfg.Token))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" || cfg.KeyFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	url := cfg.URLs[0]
	for _, u := range cfg.URLs[1:] {
		url += "," + u
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connect to NATS %s: %w", url, err)
	}
	return nc, nil
}

// Cluster is a node's handle on the cluster's NATS resources: the lease,
// node and alarm buckets and the telemetry stream.
type Cluster struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	Names  Names
	Timing Timing

	leases, nodes, alarms jetstream.KeyValue
	stream                jetstream.Stream
}

// Open creates the cluster's buckets and stream if they do not exist and
// checks that existing ones were made with the same lease TTL: every node
// must fence by the TTL the server applies, not by its own idea of it.
func Open(ctx context.Context, nc *nats.Conn, prefix string, t Timing, r Retention) (*Cluster, error) {
	t = t.WithDefaults()
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("cluster.timing: %w", err)
	}
	r = r.withDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	c := &Cluster{NC: nc, JS: js, Names: Names{Prefix: prefix}, Timing: t}
	marker := max(t.LeaseTTL, time.Second)
	if c.leases, err = ttlBucket(ctx, js, c.Names.LeaseBucket(), t.LeaseTTL, marker); err != nil {
		return nil, err
	}
	if c.nodes, err = ttlBucket(ctx, js, c.Names.NodeBucket(), t.LeaseTTL, marker); err != nil {
		return nil, err
	}
	if c.alarms, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: c.Names.AlarmBucket(), Description: "Switchyard alarm state (latched, acknowledged, shelved)",
		History: 1, Storage: jetstream.FileStorage,
	}); err != nil {
		return nil, fmt.Errorf("cluster: alarm bucket: %w", err)
	}
	p := c.Names.prefix()
	if c.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        c.Names.Stream(),
		Description: "Switchyard sample batches, device states and alarm transitions, by device",
		Subjects:    []string{p + ".s.>", p + ".d.>", p + ".a.>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      r.MaxAge,
		MaxBytes:    r.MaxBytes,
		Storage:     jetstream.FileStorage,
		Duplicates:  min(2*time.Minute, r.MaxAge), // the server refuses a window past the max age
	}); err != nil {
		return nil, fmt.Errorf("cluster: telemetry stream: %w", err)
	}
	return c, nil
}

func ttlBucket(ctx context.Context, js jetstream.JetStream, name string, ttl, marker time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, Description: "Switchyard leases: a key lives for the bucket's TTL after its last write",
		TTL: ttl, LimitMarkerTTL: marker, History: 1, Storage: jetstream.FileStorage,
	})
	if errors.Is(err, jetstream.ErrBucketExists) {
		if kv, err = js.KeyValue(ctx, name); err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
		}
		if st.TTL() != ttl {
			return nil, fmt.Errorf("cluster.timing.lease_ttl: the cluster's bucket %s expires keys after %s but this node is configured with %s; every node must use the same lease TTL", name, st.TTL(), ttl)
		}
		if st.LimitMarkerTTL() == 0 {
			return nil, fmt.Errorf("cluster: bucket %s was made without limit markers: expiries would not be seen; delete it", name)
		}
		return kv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: bucket %s: %w", name, err)
	}
	return kv, nil
}

// NewNode makes the node that keeps this process's leases.
func (c *Cluster) NewNode(dev Devices, catalog []DeviceRef, opts NodeOptions) (*Node, error) {
	opts.Timing = c.Timing
	return newNode(jsStore{c.leases}, jsStore{c.nodes}, dev, catalog, opts)
}
