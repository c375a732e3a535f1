package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestKill9UnderLoad runs the switchyard binary against simulated instruments
// and the test QuestDB with a spool, makes QuestDB unreachable (a proxy in
// front of it) until thousands of samples wait in the spool, kills the server
// with SIGKILL while it goes on archiving into the spool, restarts it on the same
// spool with QuestDB back and stops it cleanly: every sample that was in the
// spool at the kill is in QuestDB exactly once, and each channel's sequence
// numbers from the killed run have no holes.
func TestKill9UnderLoad(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	proxy := ingesttest.NewProxy(t, qdb)
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 6, Lines: 2, Seed: 11, PushHz: 50})
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.Table, cfg.QuestDB.SpoolDir = proxy.Addr(), table, spoolDir
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "switchyard.yaml")
	if err := os.WriteFile(cfgFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "switchyard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	start := func(run int) *exec.Cmd {
		logf, err := os.Create(logName(dir, run))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logf.Close() })
		cmd := exec.Command(bin, "serve", "--config", cfgFile)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd
	}
	count := func(where string) int64 {
		n, err := ingest.CountRows(context.Background(), qdb, table, where)
		if err != nil {
			return -1
		}
		return n
	}
	waitRows := func(what string, ok func() bool) {
		t.Helper()
		eventually.Truef(t, 120*time.Second, func() string { dumpLogs(t, dir); return what }, ok)
	}

	run1 := start(1)
	waitRows("rows from the first run", func() bool { return count("") >= 1000 })
	// QuestDB goes away: the server keeps taking samples, into the spool.
	proxy.Set(ingesttest.Unavailable)
	metricsAddr := serverHTTPAddr(t, dir, 1)
	const atKill = 3000
	waitRows(fmt.Sprintf("%d samples waiting in the spool", atKill), func() bool {
		return spoolRows(metricsAddr, table) >= atKill
	})
	if err := run1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run1.Wait()
	killedAt := time.Now()
	spooled, err := ingest.ReadSpool(spoolDir, ingest.DecodeSample)
	if err != nil {
		t.Fatal(err)
	}
	if len(spooled) < atKill {
		t.Fatalf("%d samples in the spool after the kill; the server had reported %d or more", len(spooled), atKill)
	}
	t.Logf("killed with %d samples in the spool not yet acknowledged", len(spooled))
	proxy.Set(ingesttest.Up)
	spooledMax := map[string]uint64{}
	for _, s := range spooled {
		spooledMax[s.Key()] = max(spooledMax[s.Key()], s.Seq)
	}

	run2 := start(2)
	waitRows("rows from the second run", func() bool {
		return count(fmt.Sprintf("ts > '%s'", killedAt.UTC().Format(time.RFC3339Nano))) >= 200
	})
	if err := run2.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run2.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second run exited with %v (log in %s)", err, dir)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("second run did not exit after SIGTERM")
	}

	// Per channel of the killed run: count == distinct seqs == max seq, from 1.
	killedTS := killedAt.UTC().Format(time.RFC3339Nano)
	check := func() (string, bool) {
		_, rows, err := ingest.Query(context.Background(), qdb, fmt.Sprintf(
			`SELECT device, channel, count() n, count_distinct(seq) d, min(seq) lo, max(seq) hi FROM "%s" WHERE ts <= '%s'`,
			table, killedTS))
		if err != nil {
			return err.Error(), false
		}
		for _, r := range rows {
			key := fmt.Sprint(r[0], "/", r[1])
			n, d, lo, hi := num(r[2]), num(r[3]), num(r[4]), num(r[5])
			if n != d || lo != 1 || hi != n {
				return fmt.Sprintf("%s: %d rows, %d distinct seqs, seq %d..%d", key, n, d, lo, hi), false
			}
			if m := spooledMax[key]; uint64(hi) < m {
				return fmt.Sprintf("%s: max seq %d in QuestDB, %d reached the spool", key, hi, m), false
			}
			delete(spooledMax, key)
		}
		if len(spooledMax) > 0 {
			return fmt.Sprintf("spooled channels missing from QuestDB: %v", spooledMax), false
		}
		return fmt.Sprintf("%d channels", len(rows)), true
	}
	var msg string
	eventually.Truef(t, 60*time.Second, func() string { return "after kill -9 and restart: " + msg }, func() bool {
		var ok bool
		msg, ok = check()
		return ok
	})
	total, distinct := count(""), int64(-1)
	if _, rows, err := ingest.Query(context.Background(), qdb,
		`SELECT count() FROM (SELECT DISTINCT ts, device, channel, seq FROM "`+table+`")`); err == nil {
		distinct = num(rows[0][0])
	}
	if total != distinct {
		t.Fatalf("%d rows but %d distinct", total, distinct)
	}
	t.Logf("kill -9 under load: %s gapless, %d rows in all, each once", msg, total)
}

func num(v any) int64 {
	n, _ := v.(json.Number).Int64()
	return n
}

func logName(dir string, run int) string { return filepath.Join(dir, fmt.Sprintf("run%d.log", run)) }

// serverHTTPAddr waits for run's log line "switchyard serving" and returns the
// HTTP address it names.
func serverHTTPAddr(t *testing.T, dir string, run int) string {
	t.Helper()
	re := regexp.MustCompile(`switchyard serving.* http=(\S+)`)
	return eventually.Value(t, 60*time.Second, "the server's HTTP address in its log", func() (string, bool) {
		b, _ := os.ReadFile(logName(dir, run))
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1]), true
		}
		return "", false
	})
}

// spoolRows reads the spool depth of table's archive from the server's /metrics
// (-1 if it cannot).
func spoolRows(httpAddr, table string) float64 {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	prefix := `switchyard_ingest_spool_rows{table="` + table + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// dumpLogs shows the end of each run's log.
func dumpLogs(t *testing.T, dir string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "run*.log"))
	for _, name := range logs {
		b, _ := os.ReadFile(name)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		t.Logf("%s:\n%s", filepath.Base(name), b)
	}
}
