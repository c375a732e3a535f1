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
	// WriteConfirm is a query sent after a write that has no reply of its own
	// (joined to it with ';' when MaxJoin allows, else as the next line), whose
	// reply must be 1, so SendCommand returns only once the instrument has
	// executed the write. Default "*OPC?" for SCPI, none when WriteAck is set
	// (the acknowledgement says so already); "-" sends writes unconfirmed. Not
	// used by the lines driver.
	WriteConfirm string
	// WriteAck is the reply format of the line an instrument answers every
	// write with (init lines, commands, read-back writes), such as "OK". Empty:
	// the instrument answers queries only. See the package doc, "Reply
	// accounting".
	WriteAck string
	// ErrorReply is the form of the instrument's error reply, which can come
	// instead of any reply or acknowledgement: text in which {message} stands
	// for the instrument's message ("ERR {message}"), or "re:" and a regular
	// expression whose group "message", if any, is the message. A command so
	// answered fails with an *InstrumentError; a poll so answered gives its
	// channels COMM_ERROR with the message. Empty: none.
	ErrorReply string
	// ErrorQuery, such as "SYST:ERR?", is asked after every write (command or
	// init line) until it answers code 0 (SCPI: `0,"No error"`); a non-zero
	// code fails the write with an *InstrumentError carrying the text.
	ErrorQuery string
	// Echo: the instrument sends every line it receives back before answering
	// it; the echo is read and checked.
	Echo bool
	// Unsolicited is the reply format of lines the instrument sends on its
	// own; wherever they arrive they are skipped (and counted), never taken as
	// a reply. Empty: any line that was not asked for puts the device out of
	// step.
	Unsolicited string
	// MaxJoin is how many queries may be joined with ';' into one line (and
	// whether a write may carry its confirmation). Default 1: one query per
	// line, since an instrument that has not said it accepts joined messages
	// may refuse them.
	MaxJoin int
	// ConnectDelay is waited after connecting, before the first line (for
	// instruments or serial bridges not ready at once). Default 0.
	ConnectDelay time.Duration
	// ProbeInterval: while a device waits out its backoff, a TCP connect
	// probes the instrument's address this often; once the instrument has
	// been unreachable, a probe that connects ends the wait (it is back).
	// Default 500ms; negative: no probe.
	ProbeInterval time.Duration
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
	// BackoffMultiplier grows the delay after each failure in a row. Default 2.
	BackoffMultiplier float64
	// MaxBlock bounds how many Modbus registers (or coils) one read request
	// spans when adjacent channels of one period are read together. Default
	// 64 (the protocol allows 125 registers); 1 reads every channel alone.
	MaxBlock int
	// MaxGap is how many unused registers a block may span between two
	// channels. Default 8; negative: none.
	MaxGap int
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
	// Pattern is a regular expression (RE2 syntax) a string argument must
	// match in full. Default DefaultStringPattern: printable text without ';'
	// (which would start another command on most instruments).
	Pattern string
	// Unit of a numeric argument, for display.
	Unit string
}

// DefaultStringPattern is what a string argument may hold unless its Pattern
// says otherwise: printable characters except ';' — no control bytes, no line
// breaks, no bidirectional-override or other format characters.
const DefaultStringPattern = `[^;\p{C}\p{Zl}\p{Zp}]*`

// MaxLineBytes bounds a line sent to an instrument: a raw line, or a rendered
// command.
const MaxLineBytes = 4096

func (s *Spec) withDefaults() Spec {
	c := *s
	if c.Identify == "" && c.Driver == DriverSCPI {
		c.Identify = "*IDN?"
	}
	if c.WriteConfirm == "" && c.Driver == DriverSCPI && c.WriteAck == "" {
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
	if c.BackoffMultiplier < 1 {
		c.BackoffMultiplier = 2
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = 500 * time.Millisecond
	}
	if c.MaxJoin < 1 {
		c.MaxJoin = 1
	}
	if c.MaxBlock < 1 {
		c.MaxBlock = 64
	}
	if c.MaxGap < 0 {
		c.MaxGap = 0
	} else if c.MaxGap == 0 {
		c.MaxGap = 8
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
