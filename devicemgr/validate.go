package devicemgr

import (
	"fmt"
	"maps"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
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

// Bounds of a spec's durations: long enough to mean something, short enough
// to be a time an instrument is waited for rather than a typo.
const (
	minPeriod  = 10 * time.Millisecond
	maxPeriod  = 24 * time.Hour
	maxTimeout = time.Hour
)

// nameRE is what a device, channel, command or argument name may be: letters
// and digits, then also '.', '_', ':' and '-' (no spaces, no '/', no glob
// characters, nothing invisible).
var nameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N}._:-]*$`)

// checkName says what is wrong with a name, "" if nothing.
func checkName(name string) string {
	switch {
	case name == "":
		return "required"
	case len(name) > 64:
		return fmt.Sprintf("at most 64 characters, got %d", len(name))
	case !nameRE.MatchString(name):
		return fmt.Sprintf("%q: use letters, digits, '.', '_', ':' and '-' only, starting with a letter or digit", name)
	}
	return ""
}

// finite reports whether f is a number (not NaN, not ±Inf).
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Problems reports every problem of a spec, each naming its field.
func (s *Spec) Problems() []FieldError {
	var out []FieldError
	add := func(field, format string, args ...any) {
		out = append(out, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if msg := checkName(s.Name); msg != "" {
		add("name", "%s", msg)
	}
	if s.Address == "" {
		add("address", "required")
	} else if msg := checkAddress(s.Address); msg != "" {
		add("address", "%s", msg)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
		v := s.Tags[k]
		switch {
		case k == "":
			add("tags", "a tag needs a name (an empty key has the value %q)", v)
		case checkLine(k) != nil || strings.ContainsAny(k, " =,"):
			add("tags."+k, "a tag name must be printable, without spaces, '=' or ','")
		case checkLine(v) != nil:
			add("tags."+k, "a tag value must be printable: %v", checkLine(v))
		}
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
	}{
		{"connect_timeout", s.ConnectTimeout}, {"reply_timeout", s.ReplyTimeout}, {"idle_timeout", s.IdleTimeout},
		{"lock_timeout", s.LockTimeout}, {"connect_delay", s.ConnectDelay},
		{"backoff.initial", s.BackoffMin}, {"backoff.max", s.BackoffMax}, {"probe_interval", s.ProbeInterval},
	} {
		switch {
		case d.v < 0 && d.name != "probe_interval":
			add(d.name, "must be > 0, got %q", d.v)
		case d.v > maxTimeout:
			add(d.name, "at most %v, got %v", maxTimeout, d.v)
		}
	}
	if s.BackoffMin > 0 && s.BackoffMax > 0 && s.BackoffMin > s.BackoffMax {
		add("backoff.initial", "%v is longer than backoff.max %v", s.BackoffMin, s.BackoffMax)
	}
	if s.BackoffMultiplier != 0 && (!finite(s.BackoffMultiplier) || s.BackoffMultiplier < 1 || s.BackoffMultiplier > 10) {
		add("backoff.multiplier", "must be from 1 to 10, got %v", s.BackoffMultiplier)
	}
	s.protocolProblems(add)
	seen := map[string]bool{}
	for i, ch := range s.Channels {
		s.channelProblems(fmt.Sprintf("channels[%d]", i), ch, seen, add)
	}
	cmds := map[string]bool{}
	for i, c := range s.Commands {
		s.commandProblems(fmt.Sprintf("commands[%d]", i), c, cmds, add)
	}
	return out
}

// checkAddress says what is wrong with a host:port address, "" if nothing.
func checkAddress(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("want host:port, got %q", addr)
	}
	if host == "" {
		return fmt.Sprintf("want host:port with a host, got %q", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Sprintf("the port must be a number from 1 to 65535, got %q", port)
	}
	return ""
}

type addFunc func(field, format string, args ...any)

// protocolProblems checks the model's description of how the instrument
// talks: its lines and reply accounting.
func (s *Spec) protocolProblems(add addFunc) {
	line := func(field, v string) {
		if err := checkLine(v); err != nil {
			add(field, "%v", err)
		}
	}
	if s.Identify != "-" {
		line("identify", s.Identify)
	}
	if s.WriteConfirm != "-" {
		line("write_confirm", s.WriteConfirm)
		if s.WriteConfirm != "" && !isQuery(s.WriteConfirm) {
			add("write_confirm", "must be a query ending in '?' (such as *OPC?), or \"-\" for none, got %q", s.WriteConfirm)
		}
	}
	for i, l := range s.Init {
		line(fmt.Sprintf("init[%d]", i), l)
	}
	textOnly := func(field string, set bool) {
		if set && s.Driver != DriverSCPI {
			add(field, "only for the scpi driver (query and reply)")
		}
	}
	textOnly("write_ack", s.WriteAck != "")
	textOnly("error_reply", s.ErrorReply != "")
	textOnly("error_query", s.ErrorQuery != "")
	textOnly("echo", s.Echo)
	textOnly("unsolicited", s.Unsolicited != "")
	textOnly("max_join", s.MaxJoin > 1)
	for _, f := range []struct{ name, v string }{{"write_ack", s.WriteAck}, {"unsolicited", s.Unsolicited}} {
		if f.v == "" {
			continue
		}
		if _, err := CompileReplyFormat(f.v); err != nil {
			add(f.name, "%v", err)
		}
	}
	if s.ErrorReply != "" {
		if _, err := compileErrorForm(s.ErrorReply); err != nil {
			add("error_reply", "%v", err)
		}
	}
	if s.ErrorQuery != "" {
		line("error_query", s.ErrorQuery)
		if !isQuery(s.ErrorQuery) {
			add("error_query", "must be a query ending in '?' (such as SYST:ERR?), got %q", s.ErrorQuery)
		}
	}
	if s.MaxJoin < 0 {
		add("max_join", "must be >= 1, got %d", s.MaxJoin)
	}
	if s.MaxBlock < 0 || s.MaxBlock > 125 {
		add("max_block", "must be from 1 to 125 registers, got %d", s.MaxBlock)
	}
	if s.MaxBlock != 0 && s.Driver != DriverModbus {
		add("max_block", "only for the modbus driver")
	}
	if s.MaxGap > 125 {
		add("max_gap", "must be at most 125 registers, got %d", s.MaxGap)
	}
}

func (s *Spec) channelProblems(at string, ch ChannelSpec, seen map[string]bool, add addFunc) {
	if msg := checkName(ch.Name); msg != "" {
		add(at+".name", "%s", msg)
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
	if ch.Query != "" {
		if err := checkLine(ch.Query); err != nil {
			add(at+".query", "%v", err)
		}
	}
	if ch.Reply != "" {
		f, err := CompileReplyFormat(ch.Reply)
		switch {
		case err != nil:
			add(at+".reply", "%v", err)
		case f.NumValues() == 0:
			add(at+".reply", "format %q reads no value: add a conversion such as %%f, or a named group (?P<%s>...)", ch.Reply, ch.Name)
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
	if !finite(ch.Scale) {
		add(at+".scale", "must be a number, got %v", ch.Scale)
	}
	if !finite(ch.Offset) {
		add(at+".offset", "must be a number, got %v", ch.Offset)
	}
	unused := func(field string, set bool) {
		if set {
			add(at+"."+field, "not used by the %s driver", s.Driver)
		}
	}
	modbusOnly := func() {
		unused("register", ch.Register != "")
		unused("addr", ch.Addr != 0)
		unused("data_type", ch.DataType != "")
		unused("word_order", ch.WordOrder != "")
		unused("scale", ch.Scale != 0 && ch.Scale != 1)
		unused("offset", ch.Offset != 0)
	}
	switch s.Driver {
	case DriverSCPI:
		if ch.Query == "" {
			add(at+".query", "required for the scpi driver")
		}
		s.periodProblems(at, ch.Period, add)
		modbusOnly()
	case DriverLines:
		unused("query", ch.Query != "")
		unused("reply", ch.Reply != "")
		if ch.Period != 0 {
			add(at+".period", "not used by the lines driver: every pushed line is published")
		}
		modbusOnly()
	case DriverModbus:
		s.periodProblems(at, ch.Period, add)
		unused("query", ch.Query != "")
		unused("reply", ch.Reply != "")
		unused("key", ch.Key != "" && ch.Key != ch.Name)
		if !oneOf(ch.Register, "", "holding", "input", "coil", "discrete") {
			add(at+".register", "must be holding, input, coil or discrete, got %q", ch.Register)
		}
		if !oneOf(ch.DataType, "", "uint16", "int16", "uint32", "int32", "float32") {
			add(at+".data_type", "must be uint16, int16, uint32, int32 or float32, got %q", ch.DataType)
		}
		if !oneOf(ch.WordOrder, "", "high", "low") {
			add(at+".word_order", "must be high or low, got %q", ch.WordOrder)
		}
		if int(ch.Addr)+int(registerCount(ch.DataType)) > 65536 {
			add(at+".addr", "%s at %d runs past the last register 65535", ch.DataType, ch.Addr)
		}
	}
}

func (s *Spec) periodProblems(at string, p time.Duration, add addFunc) {
	switch {
	case p <= 0:
		add(at+".period", "must be > 0, got %q", p)
	case p < minPeriod:
		add(at+".period", "at least %v (every poll is a round trip to the instrument), got %v", minPeriod, p)
	case p > maxPeriod:
		add(at+".period", "at most %v, got %v", maxPeriod, p)
	}
}

func (s *Spec) commandProblems(at string, c CommandSpec, cmds map[string]bool, add addFunc) {
	if msg := checkName(c.Name); msg != "" {
		add(at+".name", "%s", msg)
	} else if cmds[c.Name] {
		add(at+".name", "duplicate command %q", c.Name)
	}
	cmds[c.Name] = true
	if c.ReplyFormat != "" {
		if _, err := CompileReplyFormat(c.ReplyFormat); err != nil {
			add(at+".reply_format", "%v", err)
		}
	}
	if c.Template != "" {
		if err := checkLine(c.Template); err != nil {
			add(at+".template", "%v", err)
		}
	}
	if c.Readback != "" {
		if !s.hasChannel(c.Readback) {
			add(at+".readback", "names no channel of this device: %q", c.Readback)
		}
		if c.Settle < 0 || c.Settle > maxTimeout {
			add(at+".settle", "must be from 0 to %v, got %q", maxTimeout, c.Settle)
		}
		if c.Tolerance < 0 || !finite(c.Tolerance) {
			add(at+".tolerance", "must be a number >= 0, got %v", c.Tolerance)
		}
		if len(c.Args) == 0 {
			add(at+".readback", "needs an argument to compare with")
		}
	}
	if s.Driver == DriverModbus {
		ch := s.channel(c.Channel)
		switch {
		case ch == nil:
			add(at+".channel", "a modbus command writes a channel of this device, got %q", c.Channel)
		case ch.Register == "input" || ch.Register == "discrete":
			add(at+".channel", "channel %s is a read-only %s register: a command can write holding registers and coils only", ch.Name, ch.Register)
		}
		if len(c.Args) != 1 {
			add(at+".args", "a modbus command takes exactly one argument, got %d", len(c.Args))
		}
		if c.Template != "" || c.Reply || c.ReplyFormat != "" {
			add(at+".template", "not used by the modbus driver: the command writes its argument to its channel")
		}
	} else {
		if c.Template == "" {
			add(at+".template", "required")
		}
		if c.Channel != "" {
			add(at+".channel", "only for the modbus driver (a command writes its template)")
		}
	}
	args := map[string]bool{}
	for j, a := range c.Args {
		aat := fmt.Sprintf("%s.args[%d]", at, j)
		if msg := checkName(a.Name); msg != "" {
			add(aat+".name", "%s", msg)
		}
		args[a.Name] = true
		switch a.Type {
		case "", "float", "int", "string", "bool":
		case "enum":
			if len(a.Values) == 0 {
				add(aat+".values", "an enum needs at least one value")
			}
			for k, v := range a.Values {
				if err := checkLine(v); err != nil || v == "" || strings.Contains(v, ";") {
					add(fmt.Sprintf("%s.values[%d]", aat, k), "must be printable text without ';', got %q", v)
				}
			}
		default:
			add(aat+".type", "must be float, int, string, bool or enum, got %q", a.Type)
		}
		if a.HasMin && !finite(a.Min) {
			add(aat+".min", "must be a number, got %v", a.Min)
		}
		if a.HasMax && !finite(a.Max) {
			add(aat+".max", "must be a number, got %v", a.Max)
		}
		if a.HasMin && a.HasMax && a.Min > a.Max {
			add(aat, "min %g is above max %g", a.Min, a.Max)
		}
		if a.Pattern != "" {
			if a.Type != "string" {
				add(aat+".pattern", "only for string arguments")
			} else if _, err := regexp.Compile(a.Pattern); err != nil {
				add(aat+".pattern", "bad regular expression: %v", err)
			}
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

func (s *Spec) channel(name string) *ChannelSpec {
	for i := range s.Channels {
		if s.Channels[i].Name == name {
			return &s.Channels[i]
		}
	}
	return nil
}

func (s *Spec) hasChannel(name string) bool {
	for _, ch := range s.Channels {
		if ch.Name == name {
			return true
		}
	}
	return false
}
