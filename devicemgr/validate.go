package devicemgr

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// FieldError is one problem of a Spec: the field path (such as
// "channels[1].period") and what is wrong with it.
type FieldError struct {
	Field string
	Msg   string
}

// Error returns "field: message".
func (e FieldError) Error() string { return e.Field + ": " + e.Msg }

// Validate reports the first problem of a spec, naming the field; Problems
// reports them all.
func (s *Spec) Validate() error {
	if p := s.Problems(); len(p) > 0 {
		return p[0]
	}
	return nil
}

func oneOf(v string, allowed ...string) bool { return slices.Contains(allowed, v) }

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
	if s.Driver == DriverModbus && len(s.Init) > 0 {
		add("init", "not used by the modbus driver (it has no text to send)")
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
