package devicemgr

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchyard/switchyard/telemetry"
)

// checkCommand finds a named command and checks its arguments, returning them
// normalised; for a raw command it returns a nil spec.
func (d *Device) checkCommand(cmd Command) (*CommandSpec, []string, error) {
	if cmd.Timeout < 0 {
		return nil, nil, fmt.Errorf("timeout: must be >= 0, got %v: %w", cmd.Timeout, ErrBadArgument)
	}
	if cmd.Name == "" {
		if strings.TrimSpace(cmd.Raw) == "" {
			return nil, nil, fmt.Errorf("a command name or a raw line is required: %w", ErrBadArgument)
		}
		if err := checkLine(cmd.Raw); err != nil {
			return nil, nil, fmt.Errorf("raw line: %v: %w", err, ErrBadArgument)
		}
		return nil, nil, nil
	}
	var spec *CommandSpec
	for i := range d.spec.Commands {
		if d.spec.Commands[i].Name == cmd.Name {
			spec = &d.spec.Commands[i]
		}
	}
	if spec == nil {
		return nil, nil, fmt.Errorf("device %s has no command %q (has %s): %w",
			d.spec.Name, cmd.Name, strings.Join(d.commandNames(), ", "), ErrUnknownCommand)
	}
	if len(cmd.Args) != len(spec.Args) {
		return nil, nil, fmt.Errorf("command %s takes %d arguments, got %d: %w", spec.Name, len(spec.Args), len(cmd.Args), ErrBadArgument)
	}
	args := make([]string, len(spec.Args))
	for i, a := range spec.Args {
		v, err := checkArg(a, d.patterns[spec.Name][i], cmd.Args[i])
		if err != nil {
			return nil, nil, fmt.Errorf("command %s args[%d] (%s): %v: %w", spec.Name, i, a.Name, err, ErrBadArgument)
		}
		args[i] = v
	}
	return spec, args, nil
}

// checkLine refuses a line no instrument should get: longer than
// MaxLineBytes, not valid UTF-8, or holding a control or format character (a
// line break, NUL, ESC, a right-to-left override ...).
func checkLine(line string) error {
	if len(line) > MaxLineBytes {
		return fmt.Errorf("%d bytes, at most %d", len(line), MaxLineBytes)
	}
	if !utf8.ValidString(line) {
		return errors.New("not valid UTF-8")
	}
	for i, r := range line {
		if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Errorf("character %U at byte %d is not printable", r, i)
		}
	}
	return nil
}

// render turns a command into the line to send and whether it is a query (a
// reply is expected): for a named command, its reply settings or a query in
// its template (not in an argument's value); for a raw line, a unit ending in
// '?'.
func (d *Device) render(cmd Command) (rendered, error) {
	spec, args, err := d.checkCommand(cmd)
	if err != nil {
		return rendered{}, err
	}
	if spec == nil {
		return rendered{line: cmd.Raw, reply: isQuery(cmd.Raw)}, nil
	}
	line := spec.Template
	for i, a := range spec.Args {
		line = strings.ReplaceAll(line, "{"+a.Name+"}", args[i])
	}
	if len(line) > MaxLineBytes {
		return rendered{}, fmt.Errorf("command %s: the line would be %d bytes, at most %d: %w", spec.Name, len(line), MaxLineBytes, ErrBadArgument)
	}
	return rendered{spec: spec, args: args, line: line, reply: spec.HasReply()}, nil
}

type rendered struct {
	spec  *CommandSpec // nil for a raw line
	args  []string
	line  string
	reply bool
}

// checkArg checks one argument's text against its spec (pattern: the
// argument's compiled Pattern, for strings) and returns it normalised.
func checkArg(a ArgSpec, pattern *regexp.Regexp, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch a.Type {
	case "", "float":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", fmt.Errorf("not a number: %q", clip(v))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "", fmt.Errorf("%s is not a finite number", v)
		}
		if err := checkRange(a, f); err != nil {
			return "", err
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case "int":
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("not an integer: %q", clip(v))
		}
		if err := checkRange(a, float64(i)); err != nil {
			return "", err
		}
		return strconv.FormatInt(i, 10), nil
	case "bool":
		switch strings.ToUpper(v) {
		case "1", "ON", "TRUE":
			return "1", nil
		case "0", "OFF", "FALSE":
			return "0", nil
		}
		return "", fmt.Errorf("not a boolean: %q", clip(v))
	case "enum":
		for _, ok := range a.Values {
			if strings.EqualFold(ok, v) {
				return ok, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", clip(v), strings.Join(a.Values, ", "))
	default: // string
		if err := checkLine(v); err != nil {
			return "", err
		}
		if pattern != nil && !pattern.MatchString(v) {
			return "", fmt.Errorf("%q does not match the pattern %s", clip(v), a.patternOrDefault())
		}
		return v, nil
	}
}

// EffectivePattern is the pattern a string argument must match in full: its
// Pattern, or DefaultStringPattern.
func (a ArgSpec) EffectivePattern() string { return a.patternOrDefault() }

// HasReply reports whether the command answers with a reply of its own (its
// reply settings, or a query in its template).
func (c CommandSpec) HasReply() bool { return c.Reply || c.ReplyFormat != "" || isQuery(c.Template) }

// patternOrDefault is the argument's pattern as configured, or the default.
func (a ArgSpec) patternOrDefault() string {
	if a.Pattern != "" {
		return a.Pattern
	}
	return DefaultStringPattern
}

// compileArgPatterns compiles the pattern of every string argument, by command
// name and argument index (nil for other types). Specs are validated first.
func compileArgPatterns(cmds []CommandSpec) map[string][]*regexp.Regexp {
	out := make(map[string][]*regexp.Regexp, len(cmds))
	for _, c := range cmds {
		res := make([]*regexp.Regexp, len(c.Args))
		for i, a := range c.Args {
			if a.Type == "string" {
				res[i], _ = regexp.Compile(`^(?:` + a.patternOrDefault() + `)$`)
			}
		}
		out[c.Name] = res
	}
	return out
}

func checkRange(a ArgSpec, f float64) error {
	if a.HasMin && f < a.Min {
		return fmt.Errorf("%g is below the minimum %g", f, a.Min)
	}
	if a.HasMax && f > a.Max {
		return fmt.Errorf("%g is above the maximum %g", f, a.Max)
	}
	return nil
}

// prepare starts serving a request: it renders the line, or answers the
// caller and reports false (a request whose caller left, or a bad one). Until
// stop, an operator's abort interrupts the connection's I/O (only its writes
// with writeOnly); the session then ends, since the reply may still arrive.
func (d *Device) prepare(lc *lineConn, req *request, writeOnly bool) (r rendered, stop func(), ok bool) {
	if !req.begin(d.spec.Name) {
		return rendered{}, nil, false
	}
	r, err := d.render(req.cmd)
	if err != nil {
		req.reply(Reply{}, err)
		return rendered{}, nil, false
	}
	abort, stopAbort := req.abortSignal()
	stopIO := lc.interruptOn(abort, writeOnly)
	return r, func() { stopIO(); stopAbort() }, true
}

// execute runs one command on a query/reply connection with the model's reply
// accounting. It returns an error only when the session must end (a broken
// connection, a timeout, the device out of step); the caller always gets its
// own result. An instrument's refusal fails the command alone.
func (d *Device) execute(lc *lineConn, req *request) error {
	r, stop, ok := d.prepare(lc, req, false)
	if !ok {
		return nil
	}
	defer stop()
	// The caller's deadline bounds how long it waits (the mailbox returns
	// when it passes), never the exchange: a reply cut halfway would leave
	// the connection out of step for every other caller.
	timeout := max(d.spec.ReplyTimeout, req.cmd.Timeout)
	fail := func(err error) error {
		var ie *InstrumentError
		if errors.As(err, &ie) {
			ie.Command = req.cmd.String()
			req.reply(Reply{}, ie)
			return nil
		}
		switch {
		case errors.Is(err, ErrTimeout):
			req.reply(Reply{}, fmt.Errorf("device %s, command %q: %w", d.spec.Name, r.line, err))
		case errors.Is(err, errOutOfStep):
			req.reply(Reply{}, fmt.Errorf("device %s, command %s: %w (reconnecting): %w", d.spec.Name, req.cmd, err, ErrBadReply))
		default:
			req.reply(Reply{}, fmt.Errorf("device %s: %w", d.spec.Name, err))
		}
		return err
	}
	var rep Reply
	if r.reply {
		text, err := d.ask(lc, r.line, timeout)
		if err != nil {
			return fail(err)
		}
		if rep, err = d.replyValues(r, text); err != nil {
			req.reply(rep, err)
			return err
		}
	} else if err := d.tell(lc, r.line, timeout); err != nil {
		return fail(err)
	}
	if r.spec != nil && r.spec.Readback != "" {
		return d.awaitReadback(req, rep, r.spec, r.args, func(ch *ChannelSpec) (string, error) {
			return d.readSCPIChannel(lc, ch)
		})
	}
	req.reply(rep, nil)
	return nil
}

// replyValues parses a command's reply. A reply that does not match the
// command's reply format fails with ErrBadReply and errOutOfStep: it may be
// another query's answer, so the device resynchronises.
func (d *Device) replyValues(r rendered, text string) (Reply, error) {
	rep := Reply{Text: text}
	if r.spec == nil || r.spec.ReplyFormat == "" {
		for _, part := range strings.Split(text, ";") {
			rep.Values = append(rep.Values, guessValue(part))
		}
		return rep, nil
	}
	f, _ := CompileReplyFormat(r.spec.ReplyFormat) // checked by Validate
	vals, err := f.Match(text)
	if err != nil {
		return rep, fmt.Errorf("device %s, command %s: %v: %w: %w", d.spec.Name, r.spec.Name, err, ErrBadReply, errOutOfStep)
	}
	for i := 0; ; i++ {
		v, ok := vals.Index(i)
		if !ok {
			break
		}
		rep.Values = append(rep.Values, guessValue(v))
	}
	if f.IsRegexp() {
		for _, name := range f.re.SubexpNames() {
			if v, ok := vals.Name(name); ok && name != "" {
				rep.Values = append(rep.Values, guessValue(v))
			}
		}
	}
	return rep, nil
}

// executePush writes a command to a device that pushes lines: its input is
// the pushed stream (read by the reader goroutine), so nothing is read back.
func (d *Device) executePush(lc *lineConn, req *request) error {
	r, stop, ok := d.prepare(lc, req, true)
	if !ok {
		return nil
	}
	defer stop()
	if err := lc.writeLine(r.line, max(d.spec.ReplyTimeout, req.cmd.Timeout)); err != nil {
		req.reply(Reply{}, fmt.Errorf("device %s: %w", d.spec.Name, err))
		return err
	}
	req.reply(Reply{}, nil)
	return nil
}

func (d *Device) commandNames() []string {
	names := make([]string, len(d.spec.Commands))
	for i, c := range d.spec.Commands {
		names[i] = c.Name
	}
	return names
}

// guessValue is a number if the text is one, else the text.
func guessValue(text string) telemetry.Value {
	if v, err := parseValue("float", text); err == nil {
		return v
	}
	return telemetry.String(strings.TrimSpace(text))
}
