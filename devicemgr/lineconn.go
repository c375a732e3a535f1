package devicemgr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"time"
)

// maxLine bounds one line from a device; a longer line is a protocol error.
const maxLine = 64 << 10

// lineConn reads and writes newline-terminated lines with deadlines.
type lineConn struct {
	c net.Conn
	r *bufio.Reader
	w []byte
}

func newLineConn(c net.Conn) *lineConn {
	return &lineConn{c: c, r: bufio.NewReaderSize(c, 4096)}
}

func (l *lineConn) writeLine(s string, timeout time.Duration) error {
	l.w = append(append(l.w[:0], s...), '\n')
	if err := l.c.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	if _, err := l.c.Write(l.w); err != nil {
		return fmt.Errorf("write %q: %w", clip(s), err)
	}
	return nil
}

// readLine returns the next line without its terminator (\n or \r\n). A zero
// timeout waits forever.
func (l *lineConn) readLine(timeout time.Duration) (string, error) {
	var dl time.Time
	if timeout > 0 {
		dl = time.Now().Add(timeout)
	}
	if err := l.c.SetReadDeadline(dl); err != nil {
		return "", err
	}
	var buf []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if err == nil {
			if buf != nil {
				chunk = append(buf, chunk...)
			}
			return string(bytes.TrimRight(chunk, "\r\n")), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			buf = append(buf, chunk...)
			if len(buf) > maxLine {
				return "", fmt.Errorf("line longer than %d bytes: %w", maxLine, errParse)
			}
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "", fmt.Errorf("no reply within %v: %w", timeout, ErrTimeout)
		}
		return "", fmt.Errorf("read: %w", err)
	}
}

// query writes a line and reads the reply.
func (l *lineConn) query(s string, timeout time.Duration) (string, error) {
	if err := l.writeLine(s, timeout); err != nil {
		return "", err
	}
	return l.readLine(timeout)
}
