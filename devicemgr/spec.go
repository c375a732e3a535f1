package devicemgr

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Drivers known to the manager.
const (
	DriverSCPI   = "scpi"   // query/reply on one serialised lane
	DriverLines  = "lines"  // the device pushes lines by itself
	DriverModbus = "modbus" // Modbus TCP registers and coils
)

// Line formats of the lines driver.
const (
	LinesKeyValue = "kv"   // space-separated key=value pairs (default)
	LinesCSV      = "csv"  // comma-separated values; the first line (and any line equal to it) is the header
	LinesJSON     = "json" // one JSON object per line
)

// Spec describes one device. Zero values take the defaults documented on each field.
type Spec struct {
	Name    string
	Address string // host:port
	Driver  string // DriverSCPI, DriverLines or DriverModbus
	// Model names the device model the spec was built from (informational).
	Model string
	// Tags are free labels for selecting devices, such as area: vacuum.
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
	// InTerminator ends every line read; OutTerminator every line written.
	// Defaults "\n" (a "\r\n" is accepted as "\n" too) and "\n".
	InTerminator, OutTerminator string
	// Encoding of the device's text: "ascii" or "utf-8" (default, passed through)
	// or "latin1" (converted to UTF-8 on input and back on output).
	Encoding string
	// LineFormat of a lines device: LinesKeyValue (default), LinesCSV or LinesJSON.
	LineFormat string
	// UnitID is the Modbus unit (slave) id. Default 1.
	UnitID   uint8
	Channels []ChannelSpec
	Commands []CommandSpec
	// ConnectTimeout bounds a dial. Default 3s.
	ConnectTimeout time.Duration
	// ReplyTimeout bounds the wait for a reply. Default 1s.
	ReplyTimeout time.Duration
	// IdleTimeout: a lines device that sends nothing for this long is treated as
	// failed. Default 5s.
	IdleTimeout time.Duration
	// LockTimeout bounds how long a command waits for its turn on the device's
	// lane (behind polls and other commands). Default 5s.
	LockTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay. Defaults 250ms and 10s.
	BackoffMin, BackoffMax time.Duration
}

// ChannelSpec describes one channel.
type ChannelSpec struct {
	Name string
	// Query reads the channel (SCPI). Channels with the same Period are read in one
	// round trip, their queries joined with ';'; channels with the same Query,
	// Reply and Period share one query.
	Query string
	// Reply is the reply format (see ReplyFormat). Empty: the whole reply is the
	// value.
	Reply string
	// Index picks the value of a scanf-like Reply, from 0.
	Index int
	// Key is the key of the value in a pushed line (lines driver) or the named
	// group of a regular-expression Reply; default Name.
	Key string
	// Period between polls (SCPI, Modbus). Zero on a lines device: pushed.
	Period time.Duration
	// Type of the value: "float" (default), "int", "string" or "bool".
	Type string
	Unit string
	// Modbus: the register table ("holding" (default), "input", "coil" or
	// "discrete"), the address, the data type ("uint16" (default), "int16",
	// "uint32", "int32", "float32"), the word order of 32-bit values ("high"
	// (default): high word first, or "low"), and the scaling: value =
	// raw*Scale + Offset, Scale defaulting to 1.
	Register  string
	Addr      uint16
	DataType  string
	WordOrder string
	Scale     float64
	Offset    float64
}

// CommandSpec is a named command. Template is the line sent, where {name} is
// replaced by the argument of that name. A template ending in '?' (or Reply set)
// waits for a reply.
type CommandSpec struct {
	Name     string
	Template string
	Args     []ArgSpec
	Reply    bool
	// ReplyFormat parses the reply into Reply.Values (see ReplyFormat); it
	// implies Reply.
	ReplyFormat string
	// Role that may call the command, checked by the API layer; empty: any.
	Role string
	// Channel is the Modbus channel whose register a Modbus command writes its
	// single argument to (reverse-scaled).
	Channel string
	// Readback names a channel that must settle within Tolerance of the first
	// argument within Settle (default 5s) before the command succeeds; the
	// command fails with ErrNotSettled if it does not.
	Readback  string
	Tolerance float64
	Settle    time.Duration
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
	if c.InTerminator == "" {
		c.InTerminator = "\n"
	}
	if c.OutTerminator == "" {
		c.OutTerminator = "\n"
	}
	if c.LineFormat == "" {
		c.LineFormat = LinesKeyValue
	}
	if c.UnitID == 0 {
		c.UnitID = 1
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
	if c.LockTimeout <= 0 {
		c.LockTimeout = 5 * time.Second
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
	if s.Tags != nil {
		c.Tags = make(map[string]string, len(s.Tags))
		for k, v := range s.Tags {
			c.Tags[k] = v
		}
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
		if ch.Register == "" {
			ch.Register = "holding"
		}
		if ch.DataType == "" {
			ch.DataType = "uint16"
		}
		if ch.WordOrder == "" {
			ch.WordOrder = "high"
		}
		if ch.Scale == 0 {
			ch.Scale = 1
		}
	}
	c.Commands = append([]CommandSpec(nil), s.Commands...)
	for i := range c.Commands {
		if c.Commands[i].Settle <= 0 {
			c.Commands[i].Settle = 5 * time.Second
		}
	}
	return c
}

// FieldError is one problem of a Spec: the field path (such as
// "channels[1].period") and what is wrong with it.
type FieldError struct {
	Field string
	Msg   string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate reports the first problem of a spec, naming the field; Problems
// reports them all.
func (s *Spec) Validate() error {
	if p := s.Problems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}

// Problems reports every problem of a spec, each naming its field.
func (s *Spec) Problems() []FieldError {
	var out []FieldError
	add := func(field, format string, args ...any) {
		out = append(out, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.Name == "" {
		add("name", "required")
	}
	if s.Address == "" {
		add("address", "required")
	} else if _, _, err := net.SplitHostPort(s.Address); err != nil {
		add("address", "want host:port, got %q", s.Address)
	}
	if !oneOf(s.Driver, DriverSCPI, DriverLines, DriverModbus) {
		add("driver", "must be %q, %q or %q, got %q", DriverSCPI, DriverLines, DriverModbus, s.Driver)
	}
	if !oneOf(s.Encoding, "", "ascii", "utf-8", "latin1") {
		add("encoding", "must be ascii, utf-8 or latin1, got %q", s.Encoding)
	}
	if !oneOf(s.LineFormat, "", LinesKeyValue, LinesCSV, LinesJSON) {
		add("line_format", "must be kv, csv or json, got %q", s.LineFormat)
	}
	for _, t := range []struct{ name, v string }{{"in_terminator", s.InTerminator}, {"out_terminator", s.OutTerminator}} {
		if len(t.v) > 4 {
			add(t.name, "at most 4 bytes, got %q", t.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"connect_timeout", s.ConnectTimeout}, {"reply_timeout", s.ReplyTimeout}, {"idle_timeout", s.IdleTimeout}, {"lock_timeout", s.LockTimeout}} {
		if d.v < 0 {
			add(d.name, "must be >= 0, got %q", d.v)
		}
	}
	seen := map[string]bool{}
	for i, ch := range s.Channels {
		at := fmt.Sprintf("channels[%d]", i)
		if ch.Name == "" {
			add(at+".name", "required")
		} else if seen[ch.Name] {
			add(at+".name", "duplicate channel %q", ch.Name)
		}
		seen[ch.Name] = true
		if !oneOf(ch.Type, "", "float", "int", "string", "bool") {
			add(at+".type", "must be float, int, string or bool, got %q", ch.Type)
		}
		if ch.Period < 0 {
			add(at+".period", "must be > 0, got %q", ch.Period)
		}
		if ch.Reply != "" {
			f, err := CompileReplyFormat(ch.Reply)
			switch {
			case err != nil:
				add(at+".reply", "%v", err)
			case f.IsRegexp():
				key := ch.Key
				if key == "" {
					key = ch.Name
				}
				if !f.HasGroup(key) {
					add(at+".key", "the reply format has no group named %q", key)
				}
			case ch.Index < 0 || ch.Index >= f.NumValues():
				add(at+".index", "must be 0..%d for a format with %d values, got %d", f.NumValues()-1, f.NumValues(), ch.Index)
			}
		}
		switch s.Driver {
		case DriverSCPI:
			if ch.Query == "" {
				add(at+".query", "required for the scpi driver")
			}
			if ch.Period <= 0 {
				add(at+".period", "must be > 0, got %q", ch.Period)
			}
		case DriverModbus:
			if ch.Period <= 0 {
				add(at+".period", "must be > 0, got %q", ch.Period)
			}
			if !oneOf(ch.Register, "", "holding", "input", "coil", "discrete") {
				add(at+".register", "must be holding, input, coil or discrete, got %q", ch.Register)
			}
			if !oneOf(ch.DataType, "", "uint16", "int16", "uint32", "int32", "float32") {
				add(at+".data_type", "must be uint16, int16, uint32, int32 or float32, got %q", ch.DataType)
			}
			if !oneOf(ch.WordOrder, "", "high", "low") {
				add(at+".word_order", "must be high or low, got %q", ch.WordOrder)
			}
		}
	}
	cmds := map[string]bool{}
	for i, c := range s.Commands {
		at := fmt.Sprintf("commands[%d]", i)
		if c.Name == "" {
			add(at+".name", "required")
		} else if cmds[c.Name] {
			add(at+".name", "duplicate command %q", c.Name)
		}
		cmds[c.Name] = true
		if c.ReplyFormat != "" {
			if _, err := CompileReplyFormat(c.ReplyFormat); err != nil {
				add(at+".reply_format", "%v", err)
			}
		}
		if c.Readback != "" {
			if !s.hasChannel(c.Readback) {
				add(at+".readback", "names no channel of this device: %q", c.Readback)
			}
			if c.Settle < 0 {
				add(at+".settle", "must be >= 0, got %q", c.Settle)
			}
			if c.Tolerance < 0 {
				add(at+".tolerance", "must be >= 0, got %g", c.Tolerance)
			}
			if len(c.Args) == 0 {
				add(at+".readback", "needs an argument to compare with")
			}
		}
		if s.Driver == DriverModbus {
			if !s.hasChannel(c.Channel) {
				add(at+".channel", "a modbus command writes a channel of this device, got %q", c.Channel)
			}
			if len(c.Args) != 1 {
				add(at+".args", "a modbus command takes exactly one argument, got %d", len(c.Args))
			}
		} else if c.Template == "" {
			add(at+".template", "required")
		}
		args := map[string]bool{}
		for j, a := range c.Args {
			aat := fmt.Sprintf("%s.args[%d]", at, j)
			if a.Name == "" {
				add(aat+".name", "required")
			}
			args[a.Name] = true
			switch a.Type {
			case "", "float", "int", "string", "bool":
			case "enum":
				if len(a.Values) == 0 {
					add(aat+".values", "an enum needs at least one value")
				}
			default:
				add(aat+".type", "must be float, int, string, bool or enum, got %q", a.Type)
			}
			if a.HasMin && a.HasMax && a.Min > a.Max {
				add(aat, "min %g is above max %g", a.Min, a.Max)
			}
			if s.Driver != DriverModbus && a.Name != "" && !strings.Contains(c.Template, "{"+a.Name+"}") {
				add(aat+".name", "%q does not appear as {%s} in the template", a.Name, a.Name)
			}
		}
		for _, ref := range placeholders(c.Template) {
			if !args[ref] {
				add(at+".template", "{%s} names no argument", ref)
			}
		}
	}
	return out
}

func (s *Spec) hasChannel(name string) bool {
	for _, ch := range s.Channels {
		if ch.Name == name {
			return true
		}
	}
	return false
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
