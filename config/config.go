// Package config loads Switchyard's YAML configuration and refuses bad input with
// errors that name the file, the line and the field path, for example
//
//	switchyard.yaml:14: devices[2].channels[0].period: must be > 0, got "0s"
//
// Unknown keys and wrong types are refused too. Load returns every problem it finds,
// not just the first.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
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

// Device is one instrument.
type Device struct {
	Name           string    `yaml:"name"`
	Address        string    `yaml:"address,omitempty"`
	Driver         string    `yaml:"driver"`
	Identify       string    `yaml:"identify,omitempty"`
	Init           []string  `yaml:"init,omitempty"`
	ConnectTimeout Duration  `yaml:"connect_timeout,omitempty"`
	ReplyTimeout   Duration  `yaml:"reply_timeout,omitempty"`
	IdleTimeout    Duration  `yaml:"idle_timeout,omitempty"`
	Channels       []Channel `yaml:"channels"`
	Commands       []Command `yaml:"commands,omitempty"`
}

// Channel is one reading of a device.
type Channel struct {
	Name   string   `yaml:"name"`
	Query  string   `yaml:"query,omitempty"`
	Key    string   `yaml:"key,omitempty"`
	Period Duration `yaml:"period,omitempty"`
	Type   string   `yaml:"type,omitempty"`
	Unit   string   `yaml:"unit,omitempty"`
	// Archive filter (what QuestDB stores; live subscribers see every sample):
	// ArchiveDeadband skips numeric samples within this distance of the last
	// archived value (a fraction of it with ArchiveRelative); ArchiveHeartbeat
	// archives an unchanged value anyway this often. Defaults: archive everything.
	ArchiveDeadband  float64  `yaml:"archive_deadband,omitempty"`
	ArchiveRelative  bool     `yaml:"archive_relative,omitempty"`
	ArchiveHeartbeat Duration `yaml:"archive_heartbeat,omitempty"`
}

// Command is a named command template.
type Command struct {
	Name     string `yaml:"name"`
	Template string `yaml:"template"`
	Reply    bool   `yaml:"reply,omitempty"`
	Args     []Arg  `yaml:"args,omitempty"`
}

// Arg is a typed command argument.
type Arg struct {
	Name   string   `yaml:"name"`
	Type   string   `yaml:"type,omitempty"`
	Min    *float64 `yaml:"min,omitempty"`
	Max    *float64 `yaml:"max,omitempty"`
	Values []string `yaml:"values,omitempty"`
}

// Duration is a time.Duration written as "250ms", "1s", "2m".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: want a duration such as \"250ms\"", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: want a duration such as \"250ms\", got %q", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Load reads and checks a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// Parse checks configuration text; name is used in error messages.
func Parse(name string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			errs := make([]error, 0, len(te.Errors))
			for _, e := range te.Errors {
				errs = append(errs, fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(e, "$1: ")))
			}
			return nil, errors.Join(errs...)
		}
		if err.Error() == "EOF" {
			return nil, fmt.Errorf("%s: empty configuration", name)
		}
		return nil, fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "$1: "))
	}
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	lines := newLineIndex(&root)
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, lines.find(path), path, fmt.Sprintf(format, args...)))
	}
	c.applyDefaults()
	checkAddr := func(path, v string) {
		if _, _, err := net.SplitHostPort(v); err != nil {
			add(path, "want host:port, got %q", v)
		}
	}
	checkAddr("listen.grpc", c.Listen.GRPC)
	checkAddr("listen.http", c.Listen.HTTP)
	if c.QuestDB.Address != "" {
		checkAddr("questdb.address", c.QuestDB.Address)
	}
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
		for j, ch := range d.Channels {
			if ch.ArchiveDeadband < 0 || ch.ArchiveDeadband != ch.ArchiveDeadband {
				add(fmt.Sprintf("%s.channels[%d].archive_deadband", at, j), "must be >= 0, got %v", ch.ArchiveDeadband)
			}
			if ch.ArchiveHeartbeat < 0 {
				add(fmt.Sprintf("%s.channels[%d].archive_heartbeat", at, j), "must be >= 0, got %q", time.Duration(ch.ArchiveHeartbeat))
			}
		}
		spec := d.Spec()
		if err := spec.Validate(); err != nil {
			field, msg, _ := strings.Cut(err.Error(), ": ")
			add(at+"."+field, "%s", msg)
		}
	}
	if len(errs) > 0 {
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

// Specs converts the devices to the device manager's specs.
func (c *Config) Specs() []devicemgr.Spec {
	out := make([]devicemgr.Spec, len(c.Devices))
	for i, d := range c.Devices {
		out[i] = d.Spec()
	}
	return out
}

// Spec converts one device.
func (d Device) Spec() devicemgr.Spec {
	s := devicemgr.Spec{
		Name: d.Name, Address: d.Address, Driver: d.Driver, Identify: d.Identify, Init: d.Init,
		ConnectTimeout: time.Duration(d.ConnectTimeout),
		ReplyTimeout:   time.Duration(d.ReplyTimeout),
		IdleTimeout:    time.Duration(d.IdleTimeout),
	}
	for _, ch := range d.Channels {
		s.Channels = append(s.Channels, devicemgr.ChannelSpec{
			Name: ch.Name, Query: ch.Query, Key: ch.Key, Period: time.Duration(ch.Period), Type: ch.Type, Unit: ch.Unit,
		})
	}
	for _, cmd := range d.Commands {
		cs := devicemgr.CommandSpec{Name: cmd.Name, Template: cmd.Template, Reply: cmd.Reply}
		for _, a := range cmd.Args {
			as := devicemgr.ArgSpec{Name: a.Name, Type: a.Type, Values: a.Values}
			if a.Min != nil {
				as.Min, as.HasMin = *a.Min, true
			}
			if a.Max != nil {
				as.Max, as.HasMax = *a.Max, true
			}
			cs.Args = append(cs.Args, as)
		}
		s.Commands = append(s.Commands, cs)
	}
	return s
}
