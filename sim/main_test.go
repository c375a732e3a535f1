package sim_test

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// replyTimeout bounds every read that expects data; it is generous so that a loaded
// CI machine does not fail a test. Reads that expect silence use their own deadline.
const replyTimeout = 5 * time.Second

// client is a test's line-oriented connection to an instrument.
type client struct {
	t    *testing.T
	conn net.Conn
	rd   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, rd: bufio.NewReader(conn)}
}

func (c *client) send(line string) {
	c.t.Helper()
	if _, err := c.conn.Write([]byte(line + "\n")); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// readLine reads one line within d; it returns the line without its newline.
func (c *client) readLine(d time.Duration) (string, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	s, err := c.rd.ReadString('\n')
	return strings.TrimSuffix(s, "\n"), err
}

func (c *client) query(line string) string {
	c.t.Helper()
	c.send(line)
	reply, err := c.readLine(replyTimeout)
	if err != nil {
		c.t.Fatalf("query %q: %v", line, err)
	}
	return reply
}

// expectSilence asserts that nothing arrives within d and the connection stays open.
func (c *client) expectSilence(d time.Duration) {
	c.t.Helper()
	s, err := c.readLine(d)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.t.Fatalf("want silence for %v, got %q, %v", d, s, err)
	}
}
