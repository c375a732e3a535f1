package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// The flood: more connections than the server's descriptor limit in the child.
const (
	floodConns  = 700
	floodNofile = 512
)

// An instrument connects while the HTTP port is flooded with idle connections
// (a bounded count, loopback only): the API's connection cap keeps descriptors
// free for instruments. The server runs in a child process with a descriptor
// limit of 512; the instrument (refusing connections until the flood is in) and
// the flood (700 connections) live in this process. Without the cap the server
// accepts until no descriptor is left and the device's dial fails with "too
// many open files".
func TestInstrumentConnectsWhileHTTPFlooded(t *testing.T) {
	if path := os.Getenv("SWITCHYARD_FLOOD_CONFIG"); path != "" {
		floodChild(t, path)
		return
	}
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 11})
	fault := func(q string) {
		t.Helper()
		rec := httptest.NewRecorder()
		fleet.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/instruments/psu-01/fault?"+q, nil))
		if rec.Code >= 300 {
			t.Fatalf("fault %s: %d %s", q, rec.Code, rec.Body)
		}
	}
	fault("refuse=1")
	cfg := demoConfig(fleet)
	cfg.Listen = config.Listen{GRPC: "127.0.0.1:0", HTTP: "127.0.0.1:0"}
	cfg.Limits.ReservedDescriptors = 128 // of 512: each port may hold (512-128)/2
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "flood.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestInstrumentConnectsWhileHTTPFlooded$")
	cmd.Env = append(os.Environ(), "SWITCHYARD_FLOOD_CONFIG="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	var out strings.Builder
	addr := ""
	for addr == "" && lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if a, ok := strings.CutPrefix(lines.Text(), "HTTP "); ok {
			addr = a
		}
	}
	if addr == "" {
		cmd.Wait()
		t.Fatalf("the child never served:\n%s%s", out.String(), stderr.String())
	}
	var conns []net.Conn
	for range floodConns {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Logf("dial %d: %v", len(conns), err)
			break // the kernel's accept queue is full: flooded enough
		}
		conns = append(conns, c)
	}
	t.Logf("flooded the HTTP port with %d connections", len(conns))
	fault("clear=1") // the instrument answers now: the device's next dial must work
	fmt.Fprintln(stdin, "flooded")
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
	}
	err = cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	if err != nil || !strings.Contains(out.String(), "\nCONNECTED\n") {
		t.Fatalf("child: %v\n%s%s", err, out.String(), stderr.String())
	}
}

func floodChild(t *testing.T, path string) {
	lim := syscall.Rlimit{Cur: floodNofile, Max: floodNofile}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := startApp(t, cfg)
	w := a.devices.WatchStates()
	defer w.Close()
	_, h := a.Addrs()
	fmt.Printf("HTTP %s\n", h)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for connected := false; !connected; {
		select {
		case <-w.Ready():
		case <-timeout:
			t.Fatal("the device did not connect within 30 s while the HTTP port was flooded")
		}
		for _, info := range w.Take() {
			if strings.Contains(info.LastError, "too many open files") {
				t.Fatalf("the device found no descriptor to dial with: %s", info.LastError)
			}
			connected = connected || info.State == devicemgr.Connected
		}
	}
	fmt.Println("CONNECTED")
}
