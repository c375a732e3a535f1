package devicemgr

import (
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Drivers known to the manager.
const (
	DriverSCPI  = "scpi"  // query/reply on one serialised lane
	DriverLines = "lines" // the device pushes key=value lines by itself
)

// Spec describes one device. Zero durations take the defaults documented on each field.
type Spec struct {
	Name    string
	Address string // host:port
	Driver  string // DriverSCPI or DriverLines
	// Tags group devices for subscriptions and panels ("line": "3", "area": "vacuum").
	Tags map[string]string
	// Identify is the query whose reply names the device; default "*IDN?" for SCPI,
	// none for lines. Set to "-" to skip identification.
	Identify string
	// Init lines are sent after every (re)connect, in order. A line ending in '?'
	// waits for (and discards) its reply.
	Init []string
	// WriteConfirm is appended (after ';') to a command that has no reply of its
	// own, and its reply awaited, so SendCommand returns only once the instrument
	// has executed the command. Default "*OPC?" for SCPI; "-" sends writes
	// unconfirmed. Not used by the lines driver.
	WriteConfirm string
	Channels     []ChannelSpec
	Commands     []CommandSpec
	// ConnectTimeout bounds a dial. Default 3s.
	ConnectTimeout time.Duration
	// ReplyTimeout bounds the wait for a reply. Default 1s.
	ReplyTimeout time.Duration
	// IdleTimeout: a lines device that sends nothing for this long is treated as
	// failed. Default 5s.
	IdleTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay. Defaults 250ms and 10s.
	BackoffMin, BackoffMax time.Duration
}

// ChannelSpec describes one channel.
type ChannelSpec struct {
	Name string
	// Query reads the channel (SCPI). Channels with the same Period are read in one
	// round trip, their queries joined with ';'.
	Query string
	// Key is the key of the value in a pushed line (lines driver); default Name.
	Key string
	// Period between polls (SCPI). Must be > 0 for SCPI channels.
	Period time.Duration
	// Type of the value: "float" (default), "int", "string" or "bool".
	Type string
	Unit string
}

// CommandSpec is a named command. Template is the line sent, where {name} is
// replaced by the argument of that name. A template ending in '?' (or Reply set)
// waits for a reply.
type CommandSpec struct {
	Name     string
	Template string
	Args     []ArgSpec
	Reply    bool
}

// ArgSpec is one typed argument of a command.
type ArgSpec struct {
	Name string
	// Type: "float" (default), "int", "string", "bool" or "enum".
	Type string
	// Min and Max bound float and int arguments when HasMin / HasMax are set.
	Min, Max       float64
	HasMin, HasMax bool
	// Values lists the allowed values of an enum.
	Values []string
}

func (s *Spec) withDefaults() Spec {
	c := *s
	if c.Identify == "" && c.Driver == DriverSCPI {
		c.Identify = "*IDN?"
	}
	if c.WriteConfirm == "" && c.Driver == DriverSCPI {
		c.WriteConfirm = "*OPC?"
	}
	if c.WriteConfirm == "-" {
		c.WriteConfirm = ""
	}
	if c.Identify == "-" {
		c.Identify = ""
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 3 * time.Second
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 250 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	c.Channels = append([]ChannelSpec(nil), s.Channels...)
	for i := range c.Channels {
		ch := &c.Channels[i]
		if ch.Type == "" {
			ch.Type = "float"
		}
		if ch.Key == "" {
			ch.Key = ch.Name
		}
	}
	return c
}

// Validate reports the first problem of a spec, naming the field.
func (s *Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("name: required")
	}
	if s.Address == "" {
		return fmt.Errorf("address: required")
	}
	if !strings.Contains(s.Address, ":") {
		return fmt.Errorf("address: want host:port, got %q", s.Address)
	}
	if s.Driver != DriverSCPI && s.Driver != DriverLines {
		return fmt.Errorf("driver: must be %q or %q, got %q", DriverSCPI, DriverLines, s.Driver)
	}
	seen := map[string]bool{}
	for i, ch := range s.Channels {
		at := fmt.Sprintf("channels[%d]", i)
		if ch.Name == "" {
			return fmt.Errorf("%s.name: required", at)
		}
		if seen[ch.Name] {
			return fmt.Errorf("%s.name: duplicate channel %q", at, ch.Name)
		}
		seen[ch.Name] = true
		switch ch.Type {
		case "", "float", "int", "string", "bool":
		default:
			return fmt.Errorf("%s.type: must be float, int, string or bool, got %q", at, ch.Type)
		}
		if s.Driver == DriverSCPI {
			if ch.Query == "" {
				return fmt.Errorf("%s.query: required for the scpi driver", at)
			}
			if ch.Period <= 0 {
				return fmt.Errorf("%s.period: must be > 0, got %q", at, ch.Period)
			}
		}
	}
	cmds := map[string]bool{}
	for i, c := range s.Commands {
		at := fmt.Sprintf("commands[%d]", i)
		if c.Name == "" {
			return fmt.Errorf("%s.name: required", at)
		}
		if cmds[c.Name] {
			return fmt.Errorf("%s.name: duplicate command %q", at, c.Name)
		}
		cmds[c.Name] = true
		if c.Template == "" {
			return fmt.Errorf("%s.template: required", at)
		}
		args := map[string]bool{}
		for j, a := range c.Args {
			aat := fmt.Sprintf("%s.args[%d]", at, j)
			if a.Name == "" {
				return fmt.Errorf("%s.name: required", aat)
			}
			args[a.Name] = true
			switch a.Type {
			case "", "float", "int", "string", "bool":
			case "enum":
				if len(a.Values) == 0 {
					return fmt.Errorf("%s.values: an enum needs at least one value", aat)
				}
			default:
				return fmt.Errorf("%s.type: must be float, int, string, bool or enum, got %q", aat, a.Type)
			}
			if a.HasMin && a.HasMax && a.Min > a.Max {
				return fmt.Errorf("%s: min %g is above max %g", aat, a.Min, a.Max)
			}
			if !strings.Contains(c.Template, "{"+a.Name+"}") {
				return fmt.Errorf("%s.name: %q does not appear as {%s} in the template", aat, a.Name, a.Name)
			}
		}
		for _, ref := range placeholders(c.Template) {
			if !args[ref] {
				return fmt.Errorf("%s.template: {%s} names no argument", at, ref)
			}
		}
	}
	return nil
}

// placeholders returns the {name} references in a template.
func placeholders(t string) []string {
	var out []string
	for {
		i := strings.IndexByte(t, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(t[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, t[i+1:i+j])
		t = t[i+j+1:]
	}
}

// parseValue converts reply text to a typed value.
func parseValue(typ, text string) (telemetry.Value, error) {
	text = strings.TrimSpace(text)
	switch typ {
	case "", "float":
		f, err := parseFloat(text)
		if err != nil {
			return telemetry.Value{}, err
		}
		return telemetry.Float(f), nil
	case "int":
		i, err := parseInt(text)
		if err != nil {
			return telemetry.Value{}, err
		}
		return telemetry.Int(i), nil
	case "bool":
		switch strings.ToUpper(text) {
		case "1", "ON", "TRUE":
			return telemetry.Bool(true), nil
		case "0", "OFF", "FALSE":
			return telemetry.Bool(false), nil
		}
		return telemetry.Value{}, fmt.Errorf("not a boolean: %q", clip(text))
	case "string":
		return telemetry.String(strings.Trim(text, `"`)), nil
	}
	return telemetry.Value{}, fmt.Errorf("unknown type %q", typ)
}

// clip bounds text kept for diagnosis.
func clip(s string) string {
	const max = 200
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
