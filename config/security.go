package config

import (
	"fmt"
	"math"
	"net"
	"strings"

	"github.com/switchyard/switchyard/auth"
)

// Auth turns authentication on: callers identify themselves with a bearer token
// from TokensFile or with a client certificate named in Certificates (which
// needs tls.client_ca_file). Without either, every caller is "anonymous" with
// role admin, which the server allows on loopback addresses only.
type Auth struct {
	// TokensFile lists the tokens' hashes with their names and roles
	// (`switchyard token new` makes entries); re-read when it changes. A relative
	// path is relative to the configuration file.
	TokensFile string `yaml:"tokens_file,omitempty"`
	// Certificates give client certificates' names (subject CN, DNS, URI or
	// e-mail SAN) their roles.
	Certificates []CertIdentity `yaml:"certificates,omitempty"`
}

// CertIdentity is one mTLS identity.
type CertIdentity struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
}

// TLS serves both API ports over TLS. The files are re-read when they change.
// Relative paths are relative to the configuration file.
type TLS struct {
	CertFile string `yaml:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file,omitempty"`
	// ClientCAFile verifies client certificates (mTLS identities).
	ClientCAFile string `yaml:"client_ca_file,omitempty"`
}

// HTTP holds the HTTP port's browser-facing settings.
type HTTP struct {
	// AllowedHosts are the Host names the HTTP port answers besides localhost,
	// 127.0.0.1 and ::1 (protection against DNS rebinding).
	AllowedHosts []string `yaml:"allowed_hosts,omitempty"`
	// CORSOrigins are the origins whose pages may call the API ("https://panel.lab").
	CORSOrigins []string `yaml:"cors_origins,omitempty"`
}

// Limits bound what API clients may hold and do. Zero takes the server's
// default (README "Security").
type Limits struct {
	StreamsPerConnection int      `yaml:"streams_per_connection,omitempty"`
	StreamsPerIdentity   int      `yaml:"streams_per_identity,omitempty"`
	Streams              int      `yaml:"streams,omitempty"`
	CommandRate          float64  `yaml:"command_rate,omitempty"`
	CommandBurst         int      `yaml:"command_burst,omitempty"`
	CommandsPerDevice    int      `yaml:"commands_per_device,omitempty"`
	MaxConnections       int      `yaml:"max_connections,omitempty"`
	ReservedDescriptors  int      `yaml:"reserved_descriptors,omitempty"`
	BodyTimeout          Duration `yaml:"body_timeout,omitempty"`
	MaxRequestBytes      int      `yaml:"max_request_bytes,omitempty"`
	SubscriberQueueBytes int64    `yaml:"subscriber_queue_bytes,omitempty"`
	StreamStallTimeout   Duration `yaml:"stream_stall_timeout,omitempty"`
}

// AuthOn reports whether the configuration turns authentication on.
func (c *Config) AuthOn() bool { return c.Auth.TokensFile != "" || len(c.Auth.Certificates) > 0 }

// CertRoles returns the roles of the configured certificate names (call it on a
// checked Config).
func (c *Config) CertRoles() auth.CertRoles {
	if len(c.Auth.Certificates) == 0 {
		return nil
	}
	out := auth.CertRoles{}
	for _, ci := range c.Auth.Certificates {
		r, _ := auth.ParseRole(ci.Role)
		out[ci.Name] = r
	}
	return out
}

// checkSecurity checks the auth, tls, http, limits and insecure sections.
func (c *Config) checkSecurity(add func(path, format string, args ...any)) {
	names := map[string]int{}
	for i, ci := range c.Auth.Certificates {
		at := fmt.Sprintf("auth.certificates[%d]", i)
		if ci.Name == "" {
			add(at+".name", "required")
		} else if prev, dup := names[ci.Name]; dup {
			add(at+".name", "duplicate name %q (also auth.certificates[%d])", ci.Name, prev)
		}
		names[ci.Name] = i
		if _, err := auth.ParseRole(ci.Role); err != nil {
			add(at+".role", "%v", err)
		}
	}
	if len(c.Auth.Certificates) > 0 && c.TLS.ClientCAFile == "" {
		add("auth.certificates", "needs tls.client_ca_file to verify client certificates")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file go together")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		add("tls.client_ca_file", "needs cert_file and key_file")
	}
	for i, h := range c.HTTP.AllowedHosts {
		if h == "" || strings.ContainsAny(h, "/ :") && net.ParseIP(strings.Trim(h, "[]")) == nil {
			add(fmt.Sprintf("http.allowed_hosts[%d]", i), "want a host name without port, got %q", h)
		}
	}
	for i, o := range c.HTTP.CORSOrigins {
		if o != "*" && !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			add(fmt.Sprintf("http.cors_origins[%d]", i), "want an origin such as \"https://panel.lab\", got %q", o)
		}
	}
	l := c.Limits
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"streams_per_connection", int64(l.StreamsPerConnection)}, {"streams_per_identity", int64(l.StreamsPerIdentity)},
		{"streams", int64(l.Streams)}, {"command_burst", int64(l.CommandBurst)}, {"commands_per_device", int64(l.CommandsPerDevice)},
		{"max_connections", int64(l.MaxConnections)}, {"reserved_descriptors", int64(l.ReservedDescriptors)},
		{"max_request_bytes", int64(l.MaxRequestBytes)}, {"subscriber_queue_bytes", l.SubscriberQueueBytes},
		{"body_timeout", int64(l.BodyTimeout)}, {"stream_stall_timeout", int64(l.StreamStallTimeout)},
	} {
		if f.v < 0 {
			add("limits."+f.name, "must be >= 0 (0: the default), got %d", f.v)
		}
	}
	if l.CommandRate < 0 || math.IsNaN(l.CommandRate) || math.IsInf(l.CommandRate, 0) {
		add("limits.command_rate", "must be a finite number >= 0 (0: the default), got %v", l.CommandRate)
	}
	if l.MaxRequestBytes > 64<<20 {
		add("limits.max_request_bytes", "at most 67108864 (64 MiB), got %d", l.MaxRequestBytes)
	}
	// A non-loopback address needs TLS and authentication, or insecure: true.
	if !c.Insecure && (c.TLS.CertFile == "" || !c.AuthOn()) {
		for _, a := range []struct{ path, addr string }{{"listen.grpc", c.Listen.GRPC}, {"listen.http", c.Listen.HTTP}} {
			if !isLoopbackAddr(a.addr) {
				add(a.path, "%s is not a loopback address: it needs tls: and auth:, or insecure: true", a.addr)
			}
		}
	}
}

// isLoopbackAddr reports whether host:port serves only this computer.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true // reported as a bad address elsewhere
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
