//go:build unix

package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
)

// TestStraySpoolFileLeavesControlAndStreaming: a stray zz.seg in the spool
// directory (it once made the archive fail until the whole server exited) is
// moved aside and counted as damage; the archive runs on without a restart,
// and commands and streams work.
func TestStraySpoolFileLeavesControlAndStreaming(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 2, Seed: 5})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zz.seg"), []byte("left here by someone"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.SpoolDir = "questdb.invalid:9000", dir
	db := ingesttest.NewFakeDB()
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Appender: db})
	if err != nil {
		t.Fatal(err)
	}
	stop := serveApp(t, a)
	waitAllConnected(t, a.devices)
	eventually.True(t, 0, "the archive opened its spool", func() bool { return a.writer.SpoolStatus().Damaged == 1 })
	if st := a.writer.SpoolStatus(); st.Stopped || !st.Enabled {
		t.Fatalf("spool %+v: want archiving on, the stray file counted", st)
	}

	grpcAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name := fleet.Instruments()[0].Name()
	if _, err := svv1.NewDeviceServiceClient(conn).SendCommand(ctx, &svv1.SendCommandRequest{
		Device: name, Command: &svv1.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{"7"},
	}); err != nil {
		t.Fatalf("SendCommand with a stray file in the spool: %v", err)
	}
	stream, err := svv1.NewTelemetryServiceClient(conn).Subscribe(ctx, &svv1.SubscribeRequest{
		Selector: &svv1.Selector{Devices: []string{name}, Channels: []string{"setpoint"}}, InitialValues: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for seen := false; !seen; {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Subscribe with a stray file in the spool: %v", err)
		}
		for _, s := range resp.GetSamples() {
			seen = seen || s.GetValue().GetDoubleValue() == 7
		}
	}
	eventually.True(t, 0, "samples archived", func() bool { n, _ := db.Count("samples"); return n > 0 })
	archive, _ := a.root.Snapshot().Find("archive")
	if archive.State != supervisor.Running || archive.Restarts != 0 {
		t.Fatalf("archive process %s with %d restarts, want running with none", archive.State, archive.Restarts)
	}
	if _, err := os.Stat(filepath.Join(dir, "zz.seg")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("zz.seg still in the spool directory: %v", err)
	}
	if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "zz.seg.*")); len(q) != 1 {
		t.Fatalf("quarantine holds %v, want zz.seg", q)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v", err)
	}
}

// TestUnusableSpoolDirIsRefused: a spool directory the archive cannot use is
// refused before anything serves, naming the setting.
func TestUnusableSpoolDirIsRefused(t *testing.T) {
	file := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 5})
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.SpoolDir = "questdb.invalid:9000", file
	_, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Appender: ingesttest.NewFakeDB()})
	if err == nil || !strings.Contains(err.Error(), "questdb.spool_dir") || !strings.Contains(err.Error(), file) {
		t.Fatalf("newApp with a file as its spool directory = %v, want an error naming questdb.spool_dir and the path", err)
	}
}
