package devicemgr

import (
	"fmt"
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
