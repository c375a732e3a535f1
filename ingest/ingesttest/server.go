package ingesttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
)

// Server is a QuestDB instance of a test's own, for tests that stop and start
// QuestDB (never the shared one). Start it with StartServer.
type Server struct {
	// Addr is the HTTP host:port (SQL /exec and ILP over HTTP).
	Addr   string
	script string
	env    []string
}

// StartServer starts a private QuestDB with scripts/questdb, on four free
// loopback ports and a data root under t.TempDir(), and stops it when the test
// ends. It needs QuestDB's requirements (java, the jar) like the shared one, and
// skips or fails like QuestDB(t) when no test QuestDB is configured.
func StartServer(t testing.TB) *Server {
	t.Helper()
	QuestDB(t) // the same skip/require rules
	script, err := findScript()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s := &Server{script: script}
	t.Cleanup(func() { s.run(t, "stop") })
	// The first start may lose a port picked here to another process: pick new
	// ones and try again.
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 4)
		s.Addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
		s.env = append(os.Environ(),
			"SWITCHYARD_QDB_ROOT="+root,
			fmt.Sprintf("SWITCHYARD_QDB_HTTP_PORT=%d", ports[0]),
			fmt.Sprintf("SWITCHYARD_QDB_MIN_PORT=%d", ports[1]),
			fmt.Sprintf("SWITCHYARD_QDB_PG_PORT=%d", ports[2]),
			fmt.Sprintf("SWITCHYARD_QDB_ILP_PORT=%d", ports[3]),
			"SWITCHYARD_QDB_START_TIMEOUT=180",
		)
		out, err := s.exec("start")
		if err == nil {
			t.Logf("scripts/questdb start: %s", out)
			break
		}
		if attempt == 3 {
			t.Fatalf("scripts/questdb start: %v\n%s", err, out)
		}
		t.Logf("scripts/questdb start failed (attempt %d, retrying on other ports): %v\n%s", attempt, err, lastLines(out, 15))
		s.exec("stop")
	}
	return s
}

// Start starts the server and waits until it answers SQL.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	// A restart on the same ports occasionally fails while the old process's
	// sockets are still being released: try a few times, showing each failure.
	for attempt := 1; ; attempt++ {
		out, err := s.exec("start")
		if err == nil {
			t.Logf("scripts/questdb start: %s", out)
			break
		}
		if attempt == 3 {
			t.Fatalf("scripts/questdb start: %v\n%s", err, out)
		}
		t.Logf("scripts/questdb start failed (attempt %d, retrying): %v\n%s", attempt, err, lastLines(out, 15))
		s.exec("stop")
		time.Sleep(2 * time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, _, err := ingest.Query(ctx, s.Addr, "SELECT 1"); err != nil {
		t.Fatalf("private QuestDB at %s started but does not answer: %v", s.Addr, err)
	}
}

// Stop stops the server and waits until it has exited.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.run(t, "stop")
}

func (s *Server) exec(verb string) (string, error) {
	cmd := exec.Command(s.script, verb)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func (s *Server) run(t testing.TB, verb string) {
	t.Helper()
	out, err := s.exec(verb)
	if err != nil {
		t.Fatalf("scripts/questdb %s: %v\n%s", verb, err, out)
	}
	t.Logf("scripts/questdb %s: %s", verb, out)
}

// findScript walks up from the working directory to the repository's
// scripts/questdb.
func findScript() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "scripts", "questdb")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/questdb not found above the working directory")
		}
		dir = parent
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}
