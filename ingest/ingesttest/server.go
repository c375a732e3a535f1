package ingesttest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	ports := freePorts(t, 4)
	root := t.TempDir()
	s := &Server{
		Addr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		script: script,
		env: append(os.Environ(),
			"SWITCHYARD_QDB_ROOT="+root,
			fmt.Sprintf("SWITCHYARD_QDB_HTTP_PORT=%d", ports[0]),
			fmt.Sprintf("SWITCHYARD_QDB_MIN_PORT=%d", ports[1]),
			fmt.Sprintf("SWITCHYARD_QDB_PG_PORT=%d", ports[2]),
			fmt.Sprintf("SWITCHYARD_QDB_ILP_PORT=%d", ports[3]),
			"SWITCHYARD_QDB_START_TIMEOUT=180",
		),
	}
	t.Cleanup(func() { s.run(t, "stop") })
	s.Start(t)
	return s
}

// Start starts the server and waits until it answers SQL.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	s.run(t, "start")
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

func (s *Server) run(t testing.TB, verb string) {
	t.Helper()
	cmd := exec.Command(s.script, verb)
	cmd.Env = s.env
	out, err := cmd.CombinedOutput()
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
