package ingesttest

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	Addr     string
	script   string
	root     string
	httpPort int
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
	s := &Server{script: script, root: t.TempDir()}
	t.Cleanup(func() { s.run(t, "stop") })
	s.httpPort = freePorts(t, 1)[0]
	s.Addr = fmt.Sprintf("127.0.0.1:%d", s.httpPort)
	s.Start(t)
	return s
}

// Start starts the server and waits until it answers SQL. The HTTP port stays
// the same across restarts (clients point at it); the other three are picked
// afresh for each attempt, as another process may have taken one meanwhile.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		out, err := s.exec("start")
		if err == nil {
			t.Logf("scripts/questdb start: %s", out)
			break
		}
		if attempt == 4 {
			t.Fatalf("scripts/questdb start: %v\n%s", err, out)
		}
		t.Logf("scripts/questdb start failed (attempt %d, retrying): %v\n%s", attempt, err, lastLines(out, 15))
		s.exec("stop")
		time.Sleep(time.Second)
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

// exec runs scripts/questdb verb; a start gets fresh ports but the HTTP one.
func (s *Server) exec(verb string) (string, error) {
	cmd := exec.Command(s.script, verb)
	env := append(os.Environ(),
		"SWITCHYARD_QDB_ROOT="+s.root,
		fmt.Sprintf("SWITCHYARD_QDB_HTTP_PORT=%d", s.httpPort),
		"SWITCHYARD_QDB_START_TIMEOUT=180",
	)
	if verb == "start" {
		if p, err := pickPorts(3); err == nil {
			env = append(env,
				fmt.Sprintf("SWITCHYARD_QDB_MIN_PORT=%d", p[0]),
				fmt.Sprintf("SWITCHYARD_QDB_PG_PORT=%d", p[1]),
				fmt.Sprintf("SWITCHYARD_QDB_ILP_PORT=%d", p[2]))
		}
	}
	cmd.Env = env
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

// freePorts returns n distinct loopback ports that were free a moment ago, or
// fails the test.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	p, err := pickPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// pickPorts returns n distinct free loopback ports below Linux's ephemeral range
// (32768 and up), so that no outgoing connection takes one between our check
// and QuestDB's bind.
func pickPorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no free loopback port found in 20000-32767")
		}
		p := 20000 + rand.IntN(12768)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ls = append(ls, l)
		ports = append(ports, p)
	}
	return ports, nil
}
