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
//
// A running server replaces its configuration with a Reloader: on SIGHUP, on
// request (Reload) and, with watch: true, when a file changes, it loads the file
// again, refuses it whole on any problem (an *InvalidError with every one), and
// otherwise hands the new configuration and its difference from the running one
// (Compare: devices added, removed, restarted or changed in place, alarm rules,
// archive filters, settings that need a restart) to an Applier. The Reloader is
// safe for concurrent use; one reload runs at a time.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/devicemgr"
)

// Config is the whole configuration file.
type Config struct {
	// Include names files holding more models (a `models:` section and
	// nothing else), relative to this file: a library of instrument models
	// shared by several configurations.
	Include []string `yaml:"include,omitempty"`
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
	// Watch reloads the configuration when its file, or a file it
	// includes, changes (besides SIGHUP and `switchyard reload`).
	Watch bool `yaml:"watch,omitempty"`

	// Warnings are what Parse found legal but suspicious, each as
	// "file:line: field.path: message" (not part of the file).
	Warnings []string `yaml:"-"`
	// Hash identifies the configuration's text: the SHA-256, in hex, of the
	// file and of every file it includes (not part of the file).
	Hash string `yaml:"-"`
	// Files are the files read: the configuration, then its includes as
	// read (not part of the file).
	Files []string `yaml:"-"`
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
	// Layout is the archive layout of every device whose model does not say:
	// "narrow" (default: a row per sample in Table) or "wide" (a row per device
	// per reading, a column per channel, in <Table>_wide).
	Layout string `yaml:"layout,omitempty"`
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

// Load reads and checks a configuration file (and the files it includes).
// Relative paths of the auth and tls sections are made relative to the file's
// directory.
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
	for i, f := range c.Files[1:] {
		if !filepath.IsAbs(f) {
			c.Files[i+1] = filepath.Join(dir, f)
		}
	}
	for _, p := range []*string{&c.Auth.TokensFile, &c.TLS.CertFile, &c.TLS.KeyFile, &c.TLS.ClientCAFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return c, nil
}

// Parse checks configuration text; name is used in error messages, and
// included files are read relative to its directory.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, func(p string) ([]byte, error) {
		return os.ReadFile(filepath.Join(filepath.Dir(name), p))
	})
}

// ParseFS checks the configuration file name of fsys; included files are read
// from fsys, relative to name's directory.
func ParseFS(fsys fs.FS, name string) (*Config, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return parse(name, data, func(p string) ([]byte, error) {
		return fs.ReadFile(fsys, path.Join(path.Dir(name), p))
	})
}

// ModelsFS loads the models of the given model files of fsys (each holding a
// `models:` section), checked as Parse checks them.
func ModelsFS(fsys fs.FS, files ...string) (map[string]Model, error) {
	var text strings.Builder
	text.WriteString("include:\n")
	for _, f := range files {
		fmt.Fprintf(&text, "  - %q\n", f)
	}
	c, err := parse(".", []byte(text.String()), func(p string) ([]byte, error) { return fs.ReadFile(fsys, p) })
	if err != nil {
		return nil, err
	}
	return c.Models, nil
}

var lineRE = regexp.MustCompile(`^line (\d+): `)

// source is one file of a configuration: its name, its YAML tree and the
// lines of its fields.
type source struct {
	name    string
	lines   lineIndex
	entries []entry
}

func parse(name string, data []byte, read func(string) ([]byte, error)) (*Config, error) {
	var c Config
	hash := sha256.New()
	fmt.Fprintf(hash, "%d:%s", len(data), data)
	c.Files = []string{name}
	read = func(read func(string) ([]byte, error)) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			b, err := read(p)
			if err == nil {
				fmt.Fprintf(hash, "%d:%s", len(b), b)
				c.Files = append(c.Files, p)
			}
			return b, err
		}
	}(read)
	main := newSource(name, data)
	var errs []error
	typeLines := map[string]bool{} // "file:line" with a type error: other checks there only repeat it
	if err := decodeStrict(data, &c); err != nil {
		if err.Error() == "EOF" {
			return nil, fmt.Errorf("%s: empty configuration", name)
		}
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "$1: "))
		}
		// Type errors and unknown keys: the rest of the file was still decoded,
		// so go on and report every other problem too.
		for _, e := range te.Errors {
			line, msg := main.explain(e)
			typeLines[fmt.Sprintf("%s:%d", name, line)] = true
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, msg))
		}
	}
	// Where each model is written: the file and its line index.
	modelSrc := map[string]*source{}
	for n := range c.Models {
		modelSrc[n] = main
	}
	for i, inc := range c.Include {
		src, models, incErrs := loadModels(inc, read)
		errs = append(errs, incErrs...)
		for n, m := range models {
			if prev, dup := modelSrc[n]; dup {
				line := main.lines.find(fmt.Sprintf("include[%d]", i))
				errs = append(errs, fmt.Errorf("%s:%d: include[%d]: model %q is defined in %s too", name, line, i, n, prev.name))
				continue
			}
			if c.Models == nil {
				c.Models = map[string]Model{}
			}
			c.Models[n] = m
			modelSrc[n] = src
		}
	}
	reported := map[string]bool{}
	add := func(path, format string, args ...any) {
		src := main
		if m, ok := strings.CutPrefix(path, "models."); ok {
			n, _, _ := strings.Cut(m, ".")
			if s := modelSrc[n]; s != nil {
				src = s
			}
		}
		line := src.lines.find(path)
		msg := fmt.Sprintf("%s:%d: %s: %s", src.name, line, path, fmt.Sprintf(format, args...))
		if typeLines[fmt.Sprintf("%s:%d", src.name, line)] || reported[msg] {
			return
		}
		reported[msg] = true
		errs = append(errs, errors.New(msg))
	}
	warn := func(path, format string, args ...any) {
		src := main
		if m, ok := strings.CutPrefix(path, "models."); ok {
			n, _, _ := strings.Cut(m, ".")
			if s := modelSrc[n]; s != nil {
				src = s
			}
		}
		msg := fmt.Sprintf("%s:%d: %s: %s", src.name, src.lines.find(path), path, fmt.Sprintf(format, args...))
		if !slices.Contains(c.Warnings, msg) {
			c.Warnings = append(c.Warnings, msg)
		}
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
	for _, src := range uniqueSources(main, modelSrc) {
		checkExplicitZeros(src.entries, add)
	}
	c.checkModels(add)
	c.checkLayouts(add)
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
		c.checkDevice(i, &spec, origin, add, warn)
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
	c.checkAlarmTargets(add, warn)
	c.checkCluster(add)
	c.checkSecurity(add)
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errLess(name, errs[i], errs[j]) })
		return nil, errors.Join(errs...)
	}
	c.Hash = hex.EncodeToString(hash.Sum(nil))
	return &c, nil
}

// decodeStrict decodes YAML, refusing unknown keys.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func newSource(name string, data []byte) *source {
	var root yaml.Node
	_ = yaml.Unmarshal(data, &root)
	return &source{name: name, lines: newLineIndex(&root), entries: entriesOf(&root)}
}

// modelsFile is what an included file may hold.
type modelsFile struct {
	Models map[string]Model `yaml:"models"`
}

// loadModels reads an included file of models.
func loadModels(name string, read func(string) ([]byte, error)) (*source, map[string]Model, []error) {
	data, err := read(name)
	if err != nil {
		return nil, nil, []error{fmt.Errorf("%s: cannot read the included file: %w", name, err)}
	}
	src := newSource(name, data)
	var f modelsFile
	if err := decodeStrict(data, &f); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			if err.Error() == "EOF" {
				return src, nil, nil
			}
			return src, nil, []error{fmt.Errorf("%s:%s", name, lineRE.ReplaceAllString(strings.TrimPrefix(err.Error(), "yaml: "), "$1: "))}
		}
		var errs []error
		for _, e := range te.Errors {
			line, msg := src.explain(e)
			errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, msg))
		}
		return src, nil, errs
	}
	return src, f.Models, nil
}

// uniqueSources lists main and every included file once.
func uniqueSources(main *source, bySrc map[string]*source) []*source {
	out := []*source{main}
	for _, s := range bySrc {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// errLess orders "file:line: ..." errors: the main file first, then by file
// name and line.
func errLess(main string, a, b error) bool {
	fa, la := errPlace(a)
	fb, lb := errPlace(b)
	if fa != fb {
		if fa == main || fb == main {
			return fa == main
		}
		return fa < fb
	}
	return la < lb
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

// errPlace returns the file and line of a "file:line: ..." error.
func errPlace(err error) (string, int) {
	file, rest, _ := strings.Cut(err.Error(), ":")
	num, _, _ := strings.Cut(rest, ":")
	n, _ := strconv.Atoi(num)
	return file, n
}
