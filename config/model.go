package config

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
)

// Device is one instrument: a name and an address, optionally a Model it is an
// instance of, tags for selection, and any protocol settings of its own, which
// override the model's (a channel or command with a model's name replaces it;
// others are added).
type Device struct {
	Name    string `yaml:"name"`
	Address string `yaml:"address,omitempty"`
	Model   string `yaml:"model,omitempty"`
	// Tags label the device for selection, such as area: vacuum.
	Tags     map[string]string `yaml:"tags,omitempty"`
	Protocol `yaml:",inline"`
}

// Model is a reusable description of one type of instrument.
type Model = Protocol

// Protocol is how to talk to an instrument: what a Model holds and what a
// Device may override. Zero values mean "not set" (the model's value, then the
// device manager's default, see devicemgr.Spec).
type Protocol struct {
	Driver        string   `yaml:"driver,omitempty"`
	Identify      string   `yaml:"identify,omitempty"`
	Init          []string `yaml:"init,omitempty"`
	WriteConfirm  string   `yaml:"write_confirm,omitempty"`
	InTerminator  string   `yaml:"in_terminator,omitempty"`
	OutTerminator string   `yaml:"out_terminator,omitempty"`
	Encoding      string   `yaml:"encoding,omitempty"`
	LineFormat    string   `yaml:"line_format,omitempty"`
	// How the instrument answers (see devicemgr.Spec): the reply format of
	// its acknowledgement of every write, its error reply, the query of its
	// error queue, whether it echoes, the format of lines it sends on its
	// own.
	WriteAck    string `yaml:"write_ack,omitempty"`
	ErrorReply  string `yaml:"error_reply,omitempty"`
	ErrorQuery  string `yaml:"error_query,omitempty"`
	Echo        *bool  `yaml:"echo,omitempty"`
	Unsolicited string `yaml:"unsolicited,omitempty"`
	// Join lets the queries of one period share a line, joined with ';'
	// (default false: one query per line); MaxJoin bounds how many.
	Join    *bool `yaml:"join,omitempty"`
	MaxJoin int   `yaml:"max_join,omitempty"`
	// UnitID is the Modbus unit id, 1..247.
	UnitID int `yaml:"unit_id,omitempty"`
	// MaxBlock and MaxGap shape Modbus block reads (see devicemgr.Spec).
	MaxBlock       int       `yaml:"max_block,omitempty"`
	MaxGap         *int      `yaml:"max_gap,omitempty"`
	ConnectTimeout Duration  `yaml:"connect_timeout,omitempty"`
	ReplyTimeout   Duration  `yaml:"reply_timeout,omitempty"`
	IdleTimeout    Duration  `yaml:"idle_timeout,omitempty"`
	LockTimeout    Duration  `yaml:"lock_timeout,omitempty"`
	ConnectDelay   Duration  `yaml:"connect_delay,omitempty"`
	ProbeInterval  Duration  `yaml:"probe_interval,omitempty"`
	Backoff        Backoff   `yaml:"backoff,omitempty"`
	Channels       []Channel `yaml:"channels,omitempty"`
	Commands       []Command `yaml:"commands,omitempty"`
	// ArchiveLayout is how the device's samples are archived: "narrow" (a
	// row per sample) or "wide" (a row per reading, a column per channel).
	// Default questdb.layout.
	ArchiveLayout string `yaml:"archive_layout,omitempty"`
}

// Backoff is the delay between reconnection attempts: Initial after the
// first failure, times Multiplier after each further one, at most Max.
// Defaults 250ms, 10s and 2.
type Backoff struct {
	Initial    Duration `yaml:"initial,omitempty"`
	Max        Duration `yaml:"max,omitempty"`
	Multiplier float64  `yaml:"multiplier,omitempty"`
}

// Channel is one reading of a device (see devicemgr.ChannelSpec).
type Channel struct {
	Name   string   `yaml:"name"`
	Query  string   `yaml:"query,omitempty"`
	Reply  string   `yaml:"reply,omitempty"`
	Index  int      `yaml:"index,omitempty"`
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
	Register         string   `yaml:"register,omitempty"`
	Addr             uint16   `yaml:"addr,omitempty"`
	DataType         string   `yaml:"data_type,omitempty"`
	WordOrder        string   `yaml:"word_order,omitempty"`
	Scale            float64  `yaml:"scale,omitempty"`
	Offset           float64  `yaml:"offset,omitempty"`
}

// Command is a named command template (see devicemgr.CommandSpec).
type Command struct {
	Name        string   `yaml:"name"`
	Template    string   `yaml:"template,omitempty"`
	Reply       bool     `yaml:"reply,omitempty"`
	ReplyFormat string   `yaml:"reply_format,omitempty"`
	Role        string   `yaml:"role,omitempty"`
	Channel     string   `yaml:"channel,omitempty"`
	Readback    string   `yaml:"readback,omitempty"`
	Tolerance   float64  `yaml:"tolerance,omitempty"`
	Settle      Duration `yaml:"settle,omitempty"`
	Args        []Arg    `yaml:"args,omitempty"`
}

// Arg is a typed command argument.
type Arg struct {
	Name   string   `yaml:"name"`
	Type   string   `yaml:"type,omitempty"`
	Min    *float64 `yaml:"min,omitempty"`
	Max    *float64 `yaml:"max,omitempty"`
	Values []string `yaml:"values,omitempty"`
	// Pattern (RE2) a string argument must match in full; default printable
	// text without ';' (devicemgr.DefaultStringPattern).
	Pattern string `yaml:"pattern,omitempty"`
	// Unit of a numeric argument, for display.
	Unit string `yaml:"unit,omitempty"`
}

// origin remembers where each part of a resolved spec came from, so that a
// problem is reported at the line the user must fix (the model or the device).
type origin struct {
	model     string          // "models.NAME" or ""
	fromModel map[string]bool // top-level keys taken from the model
	channels  []string        // path of each resolved channel
	commands  []string        // path of each resolved command
}

var indexedField = regexp.MustCompile(`^(channels|commands)\[(\d+)\](.*)$`)

// path maps a devicemgr field path of device at (such as "devices[2]") to the
// path in the file.
func (o *origin) path(at, field string) string {
	if m := indexedField.FindStringSubmatch(field); m != nil {
		i, _ := strconv.Atoi(m[2])
		list := o.channels
		if m[1] == "commands" {
			list = o.commands
		}
		if i < len(list) {
			return list[i] + m[3]
		}
	}
	key, _, _ := strings.Cut(field, ".")
	key, _, _ = strings.Cut(key, "[")
	if o.fromModel[key] {
		return o.model + "." + field
	}
	return at + "." + field
}

// resolve applies device i's model and returns its spec and where its parts
// came from; the error names an unknown model.
func (c *Config) resolve(i int) (devicemgr.Spec, *origin, error) {
	d := c.Devices[i]
	at := fmt.Sprintf("devices[%d]", i)
	o := &origin{fromModel: map[string]bool{}}
	p := d.Protocol
	if d.Model != "" {
		m, ok := c.Models[d.Model]
		if !ok {
			names := make([]string, 0, len(c.Models))
			for n := range c.Models {
				names = append(names, n)
			}
			sort.Strings(names)
			return devicemgr.Spec{}, o, fmt.Errorf("unknown model %q (models: %s)", d.Model, strings.Join(names, ", "))
		}
		o.model = "models." + d.Model
		p = overlay(m, d.Protocol, o)
		for j, ch := range m.Channels {
			if !hasChannel(d.Channels, ch.Name) {
				o.channels = append(o.channels, fmt.Sprintf("%s.channels[%d]", o.model, j))
			}
		}
		for j, cmd := range m.Commands {
			if !hasCommand(d.Commands, cmd.Name) {
				o.commands = append(o.commands, fmt.Sprintf("%s.commands[%d]", o.model, j))
			}
		}
	}
	for j := range d.Channels {
		o.channels = append(o.channels, fmt.Sprintf("%s.channels[%d]", at, j))
	}
	for j := range d.Commands {
		o.commands = append(o.commands, fmt.Sprintf("%s.commands[%d]", at, j))
	}
	s := p.spec()
	s.Name, s.Address, s.Model = d.Name, d.Address, d.Model
	if len(d.Tags) > 0 {
		s.Tags = d.Tags
	}
	return s, o, nil
}

// overlay returns the model m with the device's own settings d on top.
func overlay(m, d Protocol, o *origin) Protocol {
	out := m
	str := func(key string, dst *string, v string) {
		if v != "" {
			*dst = v
		} else if *dst != "" {
			o.fromModel[key] = true
		}
	}
	dur := func(key string, dst *Duration, v Duration) {
		if v != 0 {
			*dst = v
		} else if *dst != 0 {
			o.fromModel[key] = true
		}
	}
	str("driver", &out.Driver, d.Driver)
	str("identify", &out.Identify, d.Identify)
	str("write_confirm", &out.WriteConfirm, d.WriteConfirm)
	str("in_terminator", &out.InTerminator, d.InTerminator)
	str("out_terminator", &out.OutTerminator, d.OutTerminator)
	str("encoding", &out.Encoding, d.Encoding)
	str("line_format", &out.LineFormat, d.LineFormat)
	str("archive_layout", &out.ArchiveLayout, d.ArchiveLayout)
	str("write_ack", &out.WriteAck, d.WriteAck)
	str("error_reply", &out.ErrorReply, d.ErrorReply)
	str("error_query", &out.ErrorQuery, d.ErrorQuery)
	str("unsolicited", &out.Unsolicited, d.Unsolicited)
	dur("connect_timeout", &out.ConnectTimeout, d.ConnectTimeout)
	dur("reply_timeout", &out.ReplyTimeout, d.ReplyTimeout)
	dur("idle_timeout", &out.IdleTimeout, d.IdleTimeout)
	dur("lock_timeout", &out.LockTimeout, d.LockTimeout)
	dur("connect_delay", &out.ConnectDelay, d.ConnectDelay)
	dur("probe_interval", &out.ProbeInterval, d.ProbeInterval)
	num := func(key string, dst *int, v int) {
		if v != 0 {
			*dst = v
		} else if *dst != 0 {
			o.fromModel[key] = true
		}
	}
	num("unit_id", &out.UnitID, d.UnitID)
	num("max_join", &out.MaxJoin, d.MaxJoin)
	num("max_block", &out.MaxBlock, d.MaxBlock)
	overlayPtr(o, "echo", &out.Echo, d.Echo)
	overlayPtr(o, "join", &out.Join, d.Join)
	overlayPtr(o, "max_gap", &out.MaxGap, d.MaxGap)
	if d.Backoff != (Backoff{}) {
		out.Backoff = d.Backoff
	} else if out.Backoff != (Backoff{}) {
		o.fromModel["backoff"] = true
	}
	if d.Init != nil {
		out.Init = d.Init
	} else if out.Init != nil {
		o.fromModel["init"] = true
	}
	out.Channels = nil
	for _, ch := range m.Channels {
		if !hasChannel(d.Channels, ch.Name) {
			out.Channels = append(out.Channels, ch)
		}
	}
	out.Channels = append(out.Channels, d.Channels...)
	out.Commands = nil
	for _, c := range m.Commands {
		if !hasCommand(d.Commands, c.Name) {
			out.Commands = append(out.Commands, c)
		}
	}
	out.Commands = append(out.Commands, d.Commands...)
	return out
}

// overlayPtr sets *dst to the device's v when it is set; else the model's
// value stays, and is marked as the model's.
func overlayPtr[T any](o *origin, key string, dst **T, v *T) {
	if v != nil {
		*dst = v
	} else if *dst != nil {
		o.fromModel[key] = true
	}
}

func hasChannel(list []Channel, name string) bool {
	for _, c := range list {
		if c.Name == name {
			return true
		}
	}
	return false
}

func hasCommand(list []Command, name string) bool {
	for _, c := range list {
		if c.Name == name {
			return true
		}
	}
	return false
}

// checkModels reports the problems of the models that do not depend on a device.
func (c *Config) checkModels(add func(path, format string, args ...any)) {
	names := make([]string, 0, len(c.Models))
	for n := range c.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := c.Models[n]
		if m.UnitID < 0 || m.UnitID > 247 {
			add("models."+n+".unit_id", "must be 1..247, got %d", m.UnitID)
		}
	}
	for i, d := range c.Devices {
		if d.UnitID < 0 || d.UnitID > 247 {
			add(fmt.Sprintf("devices[%d].unit_id", i), "must be 1..247, got %d", d.UnitID)
		}
	}
}

// spec converts a resolved protocol to a devicemgr.Spec without name and address.
func (p Protocol) spec() devicemgr.Spec {
	s := devicemgr.Spec{
		Driver: p.Driver, Identify: p.Identify, Init: p.Init, WriteConfirm: p.WriteConfirm,
		InTerminator: p.InTerminator, OutTerminator: p.OutTerminator, Encoding: p.Encoding,
		LineFormat: p.LineFormat,
		WriteAck:   p.WriteAck, ErrorReply: p.ErrorReply, ErrorQuery: p.ErrorQuery, Unsolicited: p.Unsolicited,
		Echo:              p.Echo != nil && *p.Echo,
		MaxJoin:           p.MaxJoin,
		MaxBlock:          p.MaxBlock,
		ConnectTimeout:    time.Duration(p.ConnectTimeout),
		ReplyTimeout:      time.Duration(p.ReplyTimeout),
		IdleTimeout:       time.Duration(p.IdleTimeout),
		LockTimeout:       time.Duration(p.LockTimeout),
		ConnectDelay:      time.Duration(p.ConnectDelay),
		ProbeInterval:     time.Duration(p.ProbeInterval),
		BackoffMin:        time.Duration(p.Backoff.Initial),
		BackoffMax:        time.Duration(p.Backoff.Max),
		BackoffMultiplier: p.Backoff.Multiplier,
	}
	if p.Join != nil && *p.Join && p.MaxJoin == 0 {
		s.MaxJoin = math.MaxInt32 // no limit but the line length
	}
	if p.MaxGap != nil {
		s.MaxGap = *p.MaxGap
		if s.MaxGap == 0 {
			s.MaxGap = -1 // none (0 is the Spec's default)
		}
	}
	if p.UnitID > 0 && p.UnitID <= 247 {
		s.UnitID = uint8(p.UnitID)
	}
	for _, ch := range p.Channels {
		s.Channels = append(s.Channels, devicemgr.ChannelSpec{
			Name: ch.Name, Query: ch.Query, Reply: ch.Reply, Index: ch.Index, Key: ch.Key,
			Period: time.Duration(ch.Period), Type: ch.Type, Unit: ch.Unit,
			Register: ch.Register, Addr: ch.Addr, DataType: ch.DataType, WordOrder: ch.WordOrder,
			Scale: ch.Scale, Offset: ch.Offset,
		})
	}
	for _, cmd := range p.Commands {
		cs := devicemgr.CommandSpec{
			Name: cmd.Name, Template: cmd.Template, Reply: cmd.Reply, ReplyFormat: cmd.ReplyFormat,
			Role: cmd.Role, Channel: cmd.Channel, Readback: cmd.Readback, Tolerance: cmd.Tolerance,
			Settle: time.Duration(cmd.Settle),
		}
		for _, a := range cmd.Args {
			as := devicemgr.ArgSpec{Name: a.Name, Type: a.Type, Values: a.Values, Pattern: a.Pattern, Unit: a.Unit}
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

// ResolvedChannels returns the channels of device i with its model applied.
func (c *Config) ResolvedChannels(i int) []Channel {
	d := c.Devices[i]
	p := d.Protocol
	if m, ok := c.Models[d.Model]; ok && d.Model != "" {
		p = overlay(m, d.Protocol, &origin{fromModel: map[string]bool{}})
	}
	return p.Channels
}
