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
		if _, _, err := net.SplitHostPort(v); err != nil {
			add(path, "want host:port, got %q", v)
		}
	}
	checkAddr("listen.grpc", c.Listen.GRPC)
	checkAddr("listen.http", c.Listen.HTTP)
	if c.QuestDB.Address != "" {
		checkAddr("questdb.address", c.QuestDB.Address)
	}
	c.checkModels(add)
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
	}
	c.checkAlarms(add)
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

// errLine returns the line number of a "file:line: ..." error, 0 if none.
func errLine(err error) int {
	_, rest, _ := strings.Cut(err.Error(), ":")
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return n
}
