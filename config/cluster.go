package config

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/switchyard/switchyard/cluster"
)

// Cluster is the optional `cluster:` section: with it the server joins a
// cluster of nodes over NATS JetStream (see the cluster package); without it
// nothing of the cluster runs.
type Cluster struct {
	// URLs of the NATS servers ("nats://host:4222", "tls://host:4222"). Required.
	URLs []string `yaml:"urls"`
	// Node is this node's name, unique in the cluster. Required (the
	// --node flag or SWITCHYARD_NODE can give it instead, so that several
	// nodes share one file).
	Node string `yaml:"node,omitempty"`
	// Address is the gRPC address other nodes and clients are told this node
	// serves on. Default listen.grpc.
	Address string `yaml:"address,omitempty"`
	// MayOwn lists tag selectors (tag: glob); a device this node may own
	// matches one of them. Default: every device.
	MayOwn []map[string]string `yaml:"may_own,omitempty"`
	// CredsFile is a NATS credentials file. Default none.
	CredsFile string `yaml:"creds_file,omitempty"`
	// User and Password, or Token, if the NATS server wants them.
	User     string `yaml:"user,omitempty"`
	Password string `yaml:"password,omitempty"`
	Token    string `yaml:"token,omitempty"`
	// TLS: the CA that signed the server's certificate, and this node's
	// certificate and key (both or neither).
	TLS ClusterTLS `yaml:"tls,omitempty"`
	// Prefix of the cluster's NATS resources. Default "switchyard".
	Prefix string `yaml:"prefix,omitempty"`
	// LeaseTTL, RenewEvery and StopMargin set the lease protocol (defaults
	// 3s, lease_ttl/4, lease_ttl/3); every node must use the same lease_ttl.
	LeaseTTL   Duration `yaml:"lease_ttl,omitempty"`
	RenewEvery Duration `yaml:"renew_every,omitempty"`
	StopMargin Duration `yaml:"stop_margin,omitempty"`
	// RetentionMaxAge and RetentionMaxBytes bound the telemetry stream
	// (defaults 24h and 1 GiB); size them for the longest archive outage.
	RetentionMaxAge   Duration `yaml:"retention_max_age,omitempty"`
	RetentionMaxBytes int64    `yaml:"retention_max_bytes,omitempty"`
}

// ClusterTLS names the TLS files of the NATS connection.
type ClusterTLS struct {
	CA   string `yaml:"ca,omitempty"`
	Cert string `yaml:"cert,omitempty"`
	Key  string `yaml:"key,omitempty"`
}

// Timing is the section's lease timing with defaults applied.
func (c *Cluster) Timing() cluster.Timing {
	return cluster.Timing{LeaseTTL: time.Duration(c.LeaseTTL), RenewEvery: time.Duration(c.RenewEvery),
		StopMargin: time.Duration(c.StopMargin)}.WithDefaults()
}

// ClusterConfig converts the section for the cluster package; node overrides
// the section's node name when not empty.
func (c *Config) ClusterConfig(node string) cluster.Config {
	s := c.Cluster
	if node == "" {
		node = s.Node
	}
	var sel []cluster.Selector
	for _, m := range s.MayOwn {
		sel = append(sel, cluster.Selector(m))
	}
	return cluster.Config{URLs: s.URLs, CredsFile: s.CredsFile, User: s.User, Password: s.Password, Token: s.Token,
		CAFile: s.TLS.CA, CertFile: s.TLS.Cert, KeyFile: s.TLS.Key, Node: node, Selectors: sel, Prefix: s.Prefix,
		Timing:    s.Timing(),
		Retention: cluster.Retention{MaxAge: time.Duration(s.RetentionMaxAge), MaxBytes: s.RetentionMaxBytes}}
}

// DeviceRefs lists the devices with their tags, for placement.
func (c *Config) DeviceRefs() []cluster.DeviceRef {
	out := make([]cluster.DeviceRef, len(c.Devices))
	for i, d := range c.Devices {
		out[i] = cluster.DeviceRef{Name: d.Name, Tags: d.Tags}
	}
	return out
}

func (c *Config) checkCluster(add func(path, format string, args ...any)) {
	s := c.Cluster
	if s == nil {
		return
	}
	if len(s.URLs) == 0 {
		add("cluster.urls", "at least one NATS URL is required")
	}
	for i, u := range s.URLs {
		p, err := url.Parse(u)
		switch {
		case err != nil:
			add(fmt.Sprintf("cluster.urls[%d]", i), "%v", err)
		case p.Scheme != "nats" && p.Scheme != "tls" || p.Host == "":
			add(fmt.Sprintf("cluster.urls[%d]", i), "want nats://host:port or tls://host:port, got %q", u)
		}
	}
	if strings.ContainsAny(s.Node, " \t\n*>") {
		add("cluster.node", "must not contain blanks, '*' or '>', got %q", s.Node)
	}
	if s.Prefix != "" && cluster.Token(s.Prefix) != s.Prefix {
		add("cluster.prefix", "letters, digits, '-' and '_' only, got %q", s.Prefix)
	}
	for i, m := range s.MayOwn {
		if len(m) == 0 {
			add(fmt.Sprintf("cluster.may_own[%d]", i), "an empty selector matches every device; leave may_own out instead")
		}
		for k, glob := range m {
			if _, err := path.Match(glob, ""); err != nil {
				add(fmt.Sprintf("cluster.may_own[%d].%s", i, k), "bad glob %q: %v", glob, err)
			}
		}
	}
	if (s.TLS.Cert == "") != (s.TLS.Key == "") {
		add("cluster.tls", "cert and key go together")
	}
	if s.RetentionMaxBytes < 0 || s.RetentionMaxAge < 0 {
		add("cluster", "retention limits must not be negative")
	}
	if err := s.Timing().Validate(); err != nil {
		add("cluster.lease_ttl", "%v", err)
	}
	if s.Address != "" {
		if _, _, err := splitHostPort(s.Address); err != nil {
			add("cluster.address", "want host:port, got %q", s.Address)
		}
	}
}
