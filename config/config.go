// Package config loads Switchyard's YAML configuration and refuses bad input with
// errors that name the file, the line and the field path, for example
//
//	switchyard.yaml:14: devices[2].channels[0].period: must be > 0, got "0s"
//
// Unknown keys, wrong types, bad formats, unknown model names and out-of-range
// values are refused too. Load returns every problem it finds, not just the
// first, sorted by line; a problem of a model is reported once, at the model.
//
// Devices may name a model (the top-level models: map), a reusable description
// of one type of instrument; the device's own settings override the model's
// (see Device). Config values are plain data: safe to read from any goroutine
// once loaded, not to modify concurrently.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/devicemgr"
)

// Config is the whole configuration file.
type Config struct {
	Listen  Listen   `yaml:"listen"`
	QuestDB QuestDB  `yaml:"questdb"`
	Devices []Device `yaml:"devices"`
	// Models are reusable device descriptions, by name, that devices refer to.
	Models map[string]Model `yaml:"models,omitempty"`
	// Alarms are the alarm limits of channels; see alarms.go.
	Alarms []Alarm `yaml:"alarms,omitempty"`
	// Cluster joins a cluster of nodes; nil: a single node. See cluster.go.
	Cluster *Cluster `yaml:"cluster,omitempty"`

	// Auth, TLS, HTTP, Limits and Insecure secure the API; see security.go.
	Auth   Auth   `yaml:"auth,omitempty"`
	TLS    TLS    `yaml:"tls,omitempty"`
	HTTP   HTTP   `yaml:"http,omitempty"`
	Limits Limits `yaml:"limits,omitempty"`
	// Insecure allows non-loopback listen addresses without TLS and
	// authentication (the server warns at every start).
	Insecure bool `yaml:"insecure,omitempty"`
}

// Listen holds the server's listen addresses. Both default to loopback.
type Listen struct {
	// GRPC is the native gRPC address. Default 127.0.0.1:7400.
	GRPC string `yaml:"grpc,omitempty"`
	// HTTP serves Connect/gRPC-Web, /healthz and /metrics. Default 127.0.0.1:7480.
	HTTP string `yaml:"http,omitempty"`
}

// QuestDB says where to archive. An empty Address means no archiving.
type QuestDB struct {
	// Address is QuestDB's HTTP host:port (ILP over HTTP and /exec).
	Address string `yaml:"address,omitempty"`
	// Table for samples. Default "samples".
	Table string `yaml:"table,omitempty"`
	// SpoolDir is the durable spool between the hub and QuestDB (one directory per
	// server; locked while in use). Empty: no spool, and samples not yet in QuestDB
	// are lost on a crash.
	SpoolDir string `yaml:"spool_dir,omitempty"`
	// SpoolFsync makes every spooled batch durable (fsync) before it counts as
	// spooled. Default true.
	SpoolFsync *bool `yaml:"spool_fsync,omitempty"`
	// SpoolMaxBytes bounds the spool on disk. Default 1073741824 (1 GiB).
	SpoolMaxBytes int64 `yaml:"spool_max_bytes,omitempty"`
	// DeadLetter is the JSON-lines file for rows QuestDB rejects. Default
	// SpoolDir/deadletter.jsonl.
	DeadLetter string `yaml:"dead_letter,omitempty"`
	// EventsTable receives device events (state changes, restarts). Default
	// "device_events". Its spool is SpoolDir/events.
	EventsTable string `yaml:"events_table,omitempty"`
}

// Duration is a time.Duration written as "250ms", "1s", "2m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	// A *yaml.TypeError lets the decoder go on and report the other problems.
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as \"250ms\"", n.Line)}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration such as \"250ms\", got %q", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Load reads and checks a configuration file. Relative paths of the auth and
// tls sections are made relative to the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	for _, p := range []*string{&c.Auth.TokensFile, &c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.ClientCAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// Parse checks configuration text; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var errs []error
	typeLines := map[int]bool{} // lines with a type error: other checks there only repeat it
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			if err.Error() == "EOF" {
				return nil, fmt.Errorf("%s: empty configuration", name)
			}
			return nil, fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "$1: "))
		}
		// Type errors and unknown keys: the rest of the file was still decoded,
		// so go on and report every other problem too.
		for _, e := range te.Errors {
			if m := lineRE.FindStringSubmatch(e); m != nil {
				n, _ := strconv.Atoi(m[1])
				typeLines[n] = true
			}
			errs = append(errs, fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(e, "$1: ")))
		}
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	lines := newLineIndex(&root)
	reported := map[string]bool{}
	add := func(path, format string, args ...any) {
		line := lines.find(path)
		msg := fmt.Sprintf("%s:%d: %s: %s", name, line, path, fmt.Sprintf(format, args...))
		if typeLines[line] || reported[msg] {
			return
		}
		reported[msg] = true
		errs = append(errs, errors.New(msg))
	}
	c.applyDefaults()
	checkAddr := func(path, v string) {
		if _, _, err := splitHostPort(v); err != nil {
			add(path, "want host:port, got %q", v)
		}
	}
	checkAddr("listen.grpc", c.Listen.GRPC)
	checkAddr("listen.http", c.Listen.HTTP)
	if c.QuestDB.Address != "" {
		checkAddr("questdb.address", c.QuestDB.Address)
	}
	c.checkModels(add)
	if c.QuestDB.SpoolMaxBytes < 1<<20 {
		add("questdb.spool_max_bytes", "must be at least 1048576 (1 MiB), got %d", c.QuestDB.SpoolMaxBytes)
	}
	seen := map[string]int{}
	for i, d := range c.Devices {
		at := fmt.Sprintf("devices[%d]", i)
		if prev, dup := seen[d.Name]; dup && d.Name != "" {
			add(at+".name", "duplicate device name %q (also devices[%d])", d.Name, prev)
		}
		seen[d.Name] = i
		spec, origin, err := c.resolve(i)
		if err != nil {
			add(at+".model", "%v", err)
			continue
		}
		for _, p := range spec.Problems() {
			add(origin.path(at, p.Field), "%s", p.Msg)
		}
		for j, ch := range c.ResolvedChannels(i) {
			if ch.ArchiveDeadband < 0 || ch.ArchiveDeadband != ch.ArchiveDeadband {
				add(fmt.Sprintf("%s.channels[%d].archive_deadband", at, j), "must be >= 0, got %v", ch.ArchiveDeadband)
			}
			if ch.ArchiveHeartbeat < 0 {
				add(fmt.Sprintf("%s.channels[%d].archive_heartbeat", at, j), "must be >= 0, got %q", time.Duration(ch.ArchiveHeartbeat))
			}
		}
	}
	c.checkAlarms(add)
	c.checkCluster(add)
	c.checkSecurity(add)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errLine(errs[i]) < errLine(errs[j]) })
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	if c.Listen.GRPC == "" {
		c.Listen.GRPC = "127.0.0.1:7400"
	}
	if c.Listen.HTTP == "" {
		c.Listen.HTTP = "127.0.0.1:7480"
	}
	if c.QuestDB.Table == "" {
		c.QuestDB.Table = "samples"
	}
	if c.QuestDB.EventsTable == "" {
		c.QuestDB.EventsTable = "device_events"
	}
	if c.QuestDB.SpoolFsync == nil {
		on := true
		c.QuestDB.SpoolFsync = &on
	}
	if c.QuestDB.SpoolMaxBytes == 0 {
		c.QuestDB.SpoolMaxBytes = 1 << 30
	}
}

// Specs converts the devices to the device manager's specs, each with its
// model applied. Call it on a Config that Parse or Load returned.
func (c *Config) Specs() []devicemgr.Spec {
	out := make([]devicemgr.Spec, len(c.Devices))
	for i := range c.Devices {
		out[i], _, _ = c.resolve(i)
	}
	return out
}

func splitHostPort(v string) (string, string, error) { return net.SplitHostPort(v) }

// errLine returns the line number of a "file:line: ..." error, 0 if none.
func errLine(err error) int {
	_, rest, _ := strings.Cut(err.Error(), ":")
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return n
}
