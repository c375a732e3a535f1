package devicemgr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxLine bounds one line from a device; a longer line is a protocol error.
const maxLine = 64 << 10

// lineConn reads and writes terminated lines with deadlines, converting the
// device's encoding.
type lineConn struct {
	c       net.Conn
	r       *bufio.Reader
	w       []byte
	in, out string // terminators
	latin1  bool
	// abort, while a command runs, ends when an operator aborts it: each I/O
	// call checks it after setting its deadline (see interruptOn). Atomic: a
	// pushing device's reader goroutine reads while commands are written.
	abort atomic.Pointer[abortState]
	// partial is what a read that timed out had received of a line (the
	// reader drops it), for expectSilence; "" after any other read.
	partial string
}

type abortState struct {
	ctx       context.Context
	writeOnly bool
}

// interruptOn makes the line I/O of one command end early when abort ends
// (an operator's abort): the deadline of the I/O in progress moves to now, and
// the next I/O call fails at once. With writeOnly, only writes are
// interrupted (a pushing device's reader goroutine keeps reading). The
// returned function ends it.
func (l *lineConn) interruptOn(abort context.Context, writeOnly bool) (stop func()) {
	l.abort.Store(&abortState{ctx: abort, writeOnly: writeOnly})
	// The hook runs on its own goroutine and may be late; once stop returns it
	// must not move a deadline, or it would cut the next command's or poll's I/O.
	var mu sync.Mutex
	active := true
	undo := context.AfterFunc(abort, func() {
		mu.Lock()
		defer mu.Unlock()
		if !active {
			return
		}
		if writeOnly {
			l.c.SetWriteDeadline(time.Now())
		} else {
			l.c.SetDeadline(time.Now())
		}
	})
	return func() {
		undo()
		mu.Lock()
		active = false
		mu.Unlock()
		l.abort.Store(nil)
	}
}

// aborted returns the abort's cause once the command in progress is aborted;
// reading says whether the caller reads (not interrupted by a write-only abort).
func (l *lineConn) aborted(reading bool) error {
	a := l.abort.Load()
	if a == nil || reading && a.writeOnly || a.ctx.Err() == nil {
		return nil
	}
	return context.Cause(a.ctx)
}

func newLineConn(c net.Conn, spec *Spec) *lineConn {
	return &lineConn{
		c: c, r: bufio.NewReaderSize(c, 4096),
		in: spec.InTerminator, out: spec.OutTerminator, latin1: spec.Encoding == "latin1",
	}
}

// writeLine writes one line, which must leave within timeout.
func (l *lineConn) writeLine(s string, timeout time.Duration) error {
	if err := l.c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := l.aborted(false); err != nil {
		return fmt.Errorf("write %q: %w", clip(s), err)
	}
	return l.write(s)
}

// write writes one line under the deadline already set.
func (l *lineConn) write(s string) error {
	if l.latin1 {
		l.w = l.w[:0]
		for _, r := range s {
			if r > 0xff {
				return fmt.Errorf("write %q: %q has no latin1 encoding", clip(s), r)
			}
			l.w = append(l.w, byte(r))
		}
	} else {
		l.w = append(l.w[:0], s...)
	}
	l.w = append(l.w, l.out...)
	if _, err := l.c.Write(l.w); err != nil {
		if aerr := l.aborted(false); aerr != nil {
			err = aerr
		}
		return fmt.Errorf("write %q: %w", clip(s), err)
	}
	return nil
}

// readLine returns the next line without its terminator (for "\n", a "\r\n"
// too). A zero timeout waits forever.
func (l *lineConn) readLine(timeout time.Duration) (string, error) {
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(timeout)
	}
	if err := l.c.SetReadDeadline(dl); err != nil {
		return "", err
	}
	if err := l.aborted(true); err != nil {
		return "", fmt.Errorf("read: %w", err)
	}
	return l.read(timeout)
}

// read reads one line under the deadline already set; timeout is only for the
// error message.
func (l *lineConn) read(timeout time.Duration) (string, error) {
	delim := l.in[len(l.in)-1]
	var buf []byte
	l.partial = ""
	for {
		chunk, err := l.r.ReadSlice(delim)
		if err == nil {
			if buf == nil && bytes.HasSuffix(chunk, []byte(l.in)) {
				// The whole line is in the reader's buffer: decode it from
				// there (decode copies) without collecting it first.
				buf = chunk
			} else {
				buf = append(buf, chunk...)
			}
			if !bytes.HasSuffix(buf, []byte(l.in)) {
				continue
			}
			line := buf[:len(buf)-len(l.in)]
			if l.in == "\n" {
				line = bytes.TrimRight(line, "\r")
			}
			return l.decode(line), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, chunk...)
			if len(buf) > maxLine {
				return "", fmt.Errorf("line longer than %d bytes: %w", maxLine, errParse)
			}
			continue
		}
		if aerr := l.aborted(true); aerr != nil {
			return "", fmt.Errorf("waiting for the reply: %w", aerr)
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if len(buf)+len(chunk) > 0 {
				l.partial = clip(l.decode(append(buf, chunk...)))
				return "", fmt.Errorf("no complete reply within %v (got %q): %w", timeout, l.partial, ErrTimeout)
			}
			return "", fmt.Errorf("no reply within %v: %w", timeout, ErrTimeout)
		}
		if len(buf)+len(chunk) > 0 {
			return "", fmt.Errorf("read: %w after a partial line %q", err, clip(l.decode(append(buf, chunk...))))
		}
		return "", fmt.Errorf("read: %w", err)
	}
}

func (l *lineConn) decode(b []byte) string {
	if !l.latin1 {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// send writes a line and sets one deadline, timeout from now, for both
// directions: what the instrument answers must arrive within it too. One
// deadline per exchange costs one runtime timer change rather than one per
// direction.
func (l *lineConn) send(s string, timeout time.Duration) error {
	if err := l.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if err := l.aborted(false); err != nil {
		return fmt.Errorf("write %q: %w", clip(s), err)
	}
	return l.write(s)
}
