package devicemgr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
		if strings.ContainsAny(cmd.Raw, "\r\n") {
			return nil, nil, fmt.Errorf("raw line must not contain a line break: %w", ErrBadArgument)
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
		v, err := checkArg(a, cmd.Args[i])
		if err != nil {
			return nil, nil, fmt.Errorf("command %s args[%d] (%s): %v: %w", spec.Name, i, a.Name, err, ErrBadArgument)
		}
		args[i] = v
	}
	return spec, args, nil
}

// render turns a command into the line to send and whether a reply is expected.
func (d *Device) render(cmd Command) (rendered, error) {
	spec, args, err := d.checkCommand(cmd)
	if err != nil {
		return rendered{}, err
	}
	if spec == nil {
		return rendered{line: cmd.Raw, reply: strings.HasSuffix(strings.TrimSpace(cmd.Raw), "?")}, nil
	}
	line := spec.Template
	for i, a := range spec.Args {
		line = strings.ReplaceAll(line, "{"+a.Name+"}", args[i])
	}
	return rendered{spec: spec, args: args, line: line, reply: spec.Reply || spec.ReplyFormat != "" || strings.HasSuffix(line, "?")}, nil
}

type rendered struct {
	spec  *CommandSpec // nil for a raw line
	args  []string
	line  string
	reply bool
}

func checkArg(a ArgSpec, v string) (string, error) {
	v = strings.TrimSpace(v)
	switch a.Type {
	case "", "float":
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return "", fmt.Errorf("not a number: %q", v)
		}
		if err := checkRange(a, f); err != nil {
			return "", err
		}
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case "int":
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("not an integer: %q", v)
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
		return "", fmt.Errorf("not a boolean: %q", v)
	case "enum":
		for _, ok := range a.Values {
			if strings.EqualFold(ok, v) {
				return ok, nil
			}
		}
		return "", fmt.Errorf("%q is not one of %s", v, strings.Join(a.Values, ", "))
	default: // string
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("must not contain a line break")
		}
		return v, nil
	}
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

// execute runs one command on the connection. It returns an error only when the
// connection must be dropped (write failure, or a timed-out reply that could
// still arrive later); the caller always gets its own result.
func (d *Device) execute(lc *lineConn, req *request, allowReply bool) error {
	if !req.begin(d.spec.Name) {
		return nil
	}
	r, err := d.render(req.cmd)
	if err != nil {
		req.reply(Reply{}, err)
		return nil
	}
	// An operator's abort interrupts the I/O; the session then ends, since
	// the instrument's reply may still arrive.
	abort, stopAbort := req.abortSignal()
	defer stopAbort()
	defer lc.interruptOn(abort, !allowReply)()
	timeout := d.spec.ReplyTimeout
	if req.cmd.Timeout > 0 {
		timeout = req.cmd.Timeout
	}
	if dl, ok := req.ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	line, confirm := r.line, false
	if !r.reply && allowReply && d.spec.WriteConfirm != "" {
		line, confirm = line+";"+d.spec.WriteConfirm, true
	}
	if err := lc.writeLine(line, timeout); err != nil {
		req.reply(Reply{}, fmt.Errorf("device %s: %w", d.spec.Name, err))
		return err
	}
	if !confirm && (!r.reply || !allowReply) {
		if allowReply && r.spec != nil && r.spec.Readback != "" {
			return d.awaitReadback(req, r.spec, r.args, func(ch *ChannelSpec) (string, error) {
				return d.readSCPIChannel(lc, ch)
			})
		}
		req.reply(Reply{}, nil)
		return nil
	}
	text, err := lc.readLine(timeout)
	if err != nil {
		if errors.Is(err, ErrTimeout) {
			req.reply(Reply{}, fmt.Errorf("device %s, command %q: %w", d.spec.Name, r.line, err))
		} else {
			req.reply(Reply{}, fmt.Errorf("device %s: %w", d.spec.Name, err))
		}
		return err
	}
	if confirm || !r.reply {
		// The confirmation's reply says the write was executed; it is not the
		// command's reply.
		if r.spec != nil && r.spec.Readback != "" {
			return d.awaitReadback(req, r.spec, r.args, func(ch *ChannelSpec) (string, error) {
				return d.readSCPIChannel(lc, ch)
			})
		}
		req.reply(Reply{}, nil)
		return nil
	}
	rep := Reply{Text: text}
	if r.spec != nil && r.spec.ReplyFormat != "" {
		f, _ := CompileReplyFormat(r.spec.ReplyFormat) // checked by Validate
		vals, err := f.Match(text)
		if err != nil {
			req.reply(rep, fmt.Errorf("device %s, command %s: %v: %w", d.spec.Name, r.spec.Name, err, ErrBadReply))
			return nil
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
		req.reply(rep, nil)
		return nil
	}
	for _, part := range strings.Split(text, ";") {
		rep.Values = append(rep.Values, guessValue(part))
	}
	req.reply(rep, nil)
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
