package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestKill9UnderLoad runs the switchyard binary against simulated instruments
// and the test QuestDB with a spool, kills it with SIGKILL while it archives,
// restarts it on the same spool and stops it cleanly: every sample that reached
// the spool before the kill is in QuestDB exactly once, and each channel's
// sequence numbers from the killed run have no holes.
func TestKill9UnderLoad(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 6, Lines: 2, Seed: 11, PushHz: 50})
	dir := t.TempDir()
	spoolDir := filepath.Join(dir, "spool")
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.Table, cfg.QuestDB.SpoolDir = qdb, table, spoolDir
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
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("run%d.log", run)))
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
		deadline := time.Now().Add(120 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				dumpLogs(t, dir)
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	run1 := start(1)
	waitRows("rows from the first run", func() bool { return count("") >= 1000 })
	time.Sleep(time.Second) // archiving in full swing
	if err := run1.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = run1.Wait()
	killedAt := time.Now()
	spooled, err := ingest.ReadSpool(spoolDir, ingest.DecodeSample)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed with %d samples in the spool not yet acknowledged", len(spooled))
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
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ok bool
		if msg, ok = check(); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -9 and restart: %s", msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
