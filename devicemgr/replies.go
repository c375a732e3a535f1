package devicemgr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Reply accounting. For every line it writes to a query/reply instrument the
// driver knows how many lines will come back and reads exactly those:
//
//   - the echo of the line, when the model says the instrument echoes (Echo);
//   - for a query (a line with a unit ending in '?'): one reply line, the
//     values of all its queries joined by ';';
//   - for a write: one acknowledgement when the model has WriteAck, else
//     nothing, which is then checked: the line must stay quiet for a moment
//     (quietFor), so an instrument that answers writes the model did not
//     declare is caught at once instead of shifting every later reply;
//   - lines matching Unsolicited, wherever they arrive: skipped and counted.
//
// A line matching ErrorReply can stand in for any reply or acknowledgement:
// it is the instrument refusing that line, and the count is kept. Anything
// else that does not fit (a reply that does not parse, a confirmation that is
// not 1, an acknowledgement that is not one, a line nobody asked for, a reply
// that only repeats the query) means the device is out of step: the reply is
// never taken as a reading, and the session ends so that the connection is
// resynchronised by reconnecting (any late reply goes with the old
// connection).

// errOutOfStep marks a reply that does not fit what was asked: the session
// ends and the device reconnects.
var errOutOfStep = errors.New("out of step")

// quietFor bounds how long an unconfirmed write waits to see whether the
// instrument answers it after all.
const quietFor = 100 * time.Millisecond

// replyModel is the compiled description of how a device's instrument
// answers; built once from the Spec (which Validate has checked).
type replyModel struct {
	ack         *ReplyFormat   // nil: writes are not answered
	errForm     *regexp.Regexp // nil: the instrument has no error reply
	errGroup    int            // index of the "message" group; -1: the whole reply
	unsolicited *ReplyFormat   // nil: no line comes unasked
	echo        bool
	confirm     string // query confirming a write; "" none
	joinConfirm bool   // the confirmation may be joined to the write with ';'
	errorQuery  string
	quiet       time.Duration
}

func newReplyModel(s *Spec) *replyModel {
	m := &replyModel{echo: s.Echo, confirm: s.WriteConfirm, joinConfirm: s.MaxJoin > 1, errorQuery: s.ErrorQuery, errGroup: -1}
	m.quiet = min(s.ReplyTimeout, quietFor)
	if s.WriteAck != "" {
		m.ack, _ = CompileReplyFormat(s.WriteAck)
	}
	if s.Unsolicited != "" {
		m.unsolicited, _ = CompileReplyFormat(s.Unsolicited)
	}
	if s.ErrorReply != "" {
		m.errForm, _ = compileErrorForm(s.ErrorReply)
		if m.errForm != nil {
			m.errGroup = m.errForm.SubexpIndex("message")
		}
	}
	return m
}

// compileErrorForm compiles an error reply form: text where {message} stands
// for any text, or "re:" and a regular expression (its group "message", if
// any, is the message). Either must match the whole reply.
func compileErrorForm(src string) (*regexp.Regexp, error) {
	if src == "" {
		return nil, errors.New("empty")
	}
	if rest, ok := strings.CutPrefix(src, "re:"); ok {
		re, err := regexp.Compile(`^(?:` + rest + `)\s*$`)
		if err != nil {
			return nil, fmt.Errorf("bad regular expression: %v", err)
		}
		return re, nil
	}
	before, after, found := strings.Cut(src, "{message}")
	if strings.ContainsAny(before, "{}") || strings.ContainsAny(after, "{}") {
		return nil, fmt.Errorf("%q: the only placeholder is {message}", src)
	}
	expr := regexp.QuoteMeta(before)
	if found {
		expr += `(?P<message>.*?)` + regexp.QuoteMeta(after)
	}
	return regexp.MustCompile(`^` + expr + `\s*$`), nil
}

// refusal returns the instrument's message if reply is its error form.
func (m *replyModel) refusal(reply string) (string, bool) {
	if m.errForm == nil {
		return "", false
	}
	sub := m.errForm.FindStringSubmatch(reply)
	if sub == nil {
		return "", false
	}
	if m.errGroup >= 0 && sub[m.errGroup] != "" {
		return strings.TrimSpace(sub[m.errGroup]), true
	}
	return strings.TrimSpace(reply), true
}

// isQuery reports whether a line (or a command template) holds a query: a
// ';'-separated unit ending in '?'.
func isQuery(line string) bool {
	for unit := range strings.SplitSeq(line, ";") {
		if strings.HasSuffix(strings.TrimSpace(unit), "?") {
			return true
		}
	}
	return false
}

// outOfStep returns the error that ends a session whose replies no longer
// fit what was asked, quoting the reply.
func outOfStep(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errOutOfStep, fmt.Sprintf(format, args...))
}

// skipUnsolicited reports whether line is one the instrument sends on its own,
// and counts it.
func (d *Device) skipUnsolicited(line string) bool {
	if d.replies.unsolicited == nil {
		return false
	}
	if _, err := d.replies.unsolicited.Match(line); err != nil {
		return false
	}
	d.unsolicitedCtr.Inc()
	return true
}

// settleInput makes sure nothing is waiting on the connection before a line
// is written: an unsolicited line is skipped; anything else is a reply nobody
// asked for, so the device is out of step.
func (d *Device) settleInput(lc *lineConn, next string) error {
	for lc.r.Buffered() > 0 {
		line, err := lc.readLine(d.spec.ReplyTimeout)
		if err != nil {
			return err
		}
		if d.skipUnsolicited(line) {
			continue
		}
		return outOfStep("unexpected line %q before %q (a reply nobody asked for%s)", clip(line), clip(next), d.hint(line))
	}
	return nil
}

// hint suggests the model setting that a stray line points to.
func (d *Device) hint(line string) string {
	switch {
	case d.replies.ack == nil && looksLikeAck(line):
		return "; does the instrument acknowledge writes? set write_ack"
	case d.replies.unsolicited == nil:
		return "; if the instrument sends such lines on its own, set unsolicited"
	}
	return ""
}

func looksLikeAck(line string) bool {
	u := strings.ToUpper(strings.TrimSpace(line))
	return u == "OK" || u == "ACK" || strings.HasPrefix(u, "ERR") || u == "DONE"
}

// readReply reads the next line that is not unsolicited, under the deadline
// already set; timeout is for the error message.
func (d *Device) readReply(lc *lineConn, timeout time.Duration) (string, error) {
	for {
		line, err := lc.read(timeout)
		if err != nil || !d.skipUnsolicited(line) {
			return line, err
		}
	}
}

// readEcho reads the echo of line, which the model says the instrument sends.
func (d *Device) readEcho(lc *lineConn, line string, timeout time.Duration) error {
	got, err := d.readReply(lc, timeout)
	if err != nil {
		return fmt.Errorf("waiting for the echo of %q: %w", clip(line), err)
	}
	if strings.TrimSpace(got) != strings.TrimSpace(line) {
		return outOfStep("the echo of %q is %q", clip(line), clip(got))
	}
	return nil
}

// ask writes a query and returns its one reply line. One deadline covers the
// whole exchange. An error reply is an *InstrumentError (the connection stays
// in step); errOutOfStep, a timeout or an I/O error end the session.
func (d *Device) ask(lc *lineConn, line string, timeout time.Duration) (string, error) {
	if err := d.settleInput(lc, line); err != nil {
		return "", err
	}
	if err := lc.send(line, timeout); err != nil {
		return "", err
	}
	d.requestCtr.Inc()
	return d.answer(lc, line, timeout)
}

// answer reads what the instrument says to a query line just written.
func (d *Device) answer(lc *lineConn, line string, timeout time.Duration) (string, error) {
	if d.replies.echo {
		if err := d.readEcho(lc, line, timeout); err != nil {
			return "", err
		}
	}
	reply, err := d.readReply(lc, timeout)
	if err != nil {
		return "", err
	}
	if msg, ok := d.replies.refusal(reply); ok {
		return reply, &InstrumentError{Device: d.spec.Name, Message: msg}
	}
	if !d.replies.echo && strings.TrimSpace(reply) == strings.TrimSpace(line) {
		return "", outOfStep("the reply to %q repeats it; does the instrument echo? set echo: true", clip(line))
	}
	return reply, nil
}

// tell writes a line that is not a query and reads what the model says
// follows it: the acknowledgement, or the confirmation's 1, or nothing (then
// it checks that nothing comes), and the error queue if the model asks. An
// instrument's refusal is an *InstrumentError.
func (d *Device) tell(lc *lineConn, line string, timeout time.Duration) error {
	m := d.replies
	switch {
	case m.ack != nil:
		reply, err := d.ask(lc, line, timeout)
		if err != nil {
			return err
		}
		if _, err := m.ack.Match(reply); err != nil {
			return outOfStep("the reply to %q is %q, not the acknowledgement %q", clip(line), clip(reply), m.ack.String())
		}
		if m.confirm != "" {
			if err := d.confirm(lc, "", timeout); err != nil {
				return err
			}
		}
	case m.confirm != "":
		if err := d.confirm(lc, line, timeout); err != nil {
			return err
		}
	default:
		if err := d.settleInput(lc, line); err != nil {
			return err
		}
		if err := lc.send(line, timeout); err != nil {
			return err
		}
		d.requestCtr.Inc()
		if m.echo {
			if err := d.readEcho(lc, line, timeout); err != nil {
				return err
			}
		}
		if err := d.expectSilence(lc, line); err != nil {
			return err
		}
	}
	if m.errorQuery != "" {
		return d.drainErrors(lc, timeout)
	}
	return nil
}

// confirm sends the write (if any) with the model's confirmation query,
// joined to it when the instrument takes joined messages, else as the next
// line in the same write, and checks that the confirmation answers 1.
func (d *Device) confirm(lc *lineConn, write string, timeout time.Duration) error {
	m := d.replies
	var reply string
	var err error
	switch {
	case write == "":
		reply, err = d.ask(lc, m.confirm, timeout)
	case m.joinConfirm:
		reply, err = d.ask(lc, write+";"+m.confirm, timeout)
	default:
		if err := d.settleInput(lc, write); err != nil {
			return err
		}
		if err := lc.send(write, timeout); err != nil {
			return err
		}
		if m.echo {
			if err := d.readEcho(lc, write, timeout); err != nil {
				return err
			}
		}
		if err := lc.write(m.confirm); err != nil {
			return err
		}
		d.requestCtr.Inc()
		reply, err = d.answer(lc, m.confirm, timeout)
	}
	if err != nil {
		return err
	}
	if f, perr := strconv.ParseFloat(strings.TrimSpace(reply), 64); perr != nil || f != 1 {
		what := write
		if what == "" {
			what = "the write"
		}
		return outOfStep("the confirmation %s of %q answered %q, want 1%s", m.confirm, clip(what), clip(reply), d.hint(reply))
	}
	return nil
}

// expectSilence checks that nothing answers an unconfirmed write for a
// moment: a line that is not unsolicited is a reply the model does not know
// about, and would otherwise be read as the answer to the next query.
func (d *Device) expectSilence(lc *lineConn, line string) error {
	wait := d.replies.quiet
	if err := lc.c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return err
	}
	for {
		got, err := lc.read(wait)
		switch {
		case err == nil && d.skipUnsolicited(got):
			continue
		case err == nil:
			return outOfStep("the write %q was answered with %q%s", clip(line), clip(got), d.hint(got))
		case errors.Is(err, ErrTimeout) && lc.partial == "":
			return nil
		case errors.Is(err, ErrTimeout):
			return outOfStep("the write %q was answered with %q (no line end yet)", clip(line), clip(lc.partial))
		default:
			return err
		}
	}
}

// scpiErrorRE reads an SCPI error queue entry: `-222,"Data out of range"`.
var scpiErrorRE = regexp.MustCompile(`^\s*([+-]?\d+)\s*(?:,\s*(.*?))?\s*$`)

// maxQueuedErrors bounds how many error queue entries are read after a write.
const maxQueuedErrors = 32

// drainErrors reads the instrument's error queue until it answers code 0.
// Non-zero entries fail the write with an *InstrumentError holding their text.
func (d *Device) drainErrors(lc *lineConn, timeout time.Duration) error {
	var msgs []string
	for range maxQueuedErrors {
		reply, err := d.ask(lc, d.replies.errorQuery, timeout)
		if err != nil {
			return err
		}
		m := scpiErrorRE.FindStringSubmatch(reply)
		if m == nil {
			return outOfStep("the error query %s answered %q, want a code such as 0,\"No error\"", d.replies.errorQuery, clip(reply))
		}
		if code, _ := strconv.Atoi(m[1]); code == 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(reply))
	}
	if len(msgs) > 0 {
		return &InstrumentError{Device: d.spec.Name, Message: strings.Join(msgs, "; ")}
	}
	return nil
}
