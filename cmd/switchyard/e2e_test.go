package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard/switchyard/devicemgr"
	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestEndToEnd runs 24 simulated instruments, a real QuestDB and the whole
// server; streams over gRPC and Connect; changes a set-point through SendCommand
// and sees it in both streams; stops; and checks that QuestDB holds exactly the
// samples that were published, none lost and none twice. The samples table is
// made beforehand without DEDUP keys, so a row sent twice would be stored twice
// and counted: the archive's exactly-once must come from sending each row once,
// not from QuestDB collapsing re-sends.
func TestEndToEnd(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	t.Cleanup(func() { // the app puts alarm transitions next to the samples table
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _, _ = ingest.Query(ctx, qdb, `DROP TABLE IF EXISTS "`+table+`_alarm_events"`)
	})
	// The writer uses an existing table as it is.
	noDedup := regexp.MustCompile(`\s*DEDUP UPSERT KEYS\([^)]*\)`).ReplaceAllString(ingest.CreateTableSQL(table), "")
	if strings.Contains(noDedup, "DEDUP") {
		t.Fatalf("could not take DEDUP out of %s", noDedup)
	}
	if _, _, err := ingest.Query(context.Background(), qdb, noDedup); err != nil {
		t.Fatal(err)
	}
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 20, Lines: 4, Seed: 7, PushHz: 20})
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.Table = qdb, table

	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Counts everything published, from the first sample to the last.
	published := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "count", Policy: telemetry.Lossless})
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			stop()
			<-served
		}
	}()
	waitAllConnected(t, a.devices)
	grpcAddr, httpAddr := a.Addrs()

	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sel := &svv1.Selector{Devices: []string{"psu-07"}, Channels: []string{"voltage"}}
	streamCtx, endStreams := context.WithCancel(ctx)
	defer endStreams()
	gstream, err := svv1.NewTelemetryServiceClient(conn).Subscribe(streamCtx, &svv1.SubscribeRequest{Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	connectClient := switchyardv1connect.NewTelemetryServiceClient(http.DefaultClient, "http://"+httpAddr.String())
	cstream, err := connectClient.Subscribe(streamCtx, connect.NewRequest(&svv1.SubscribeRequest{Selector: sel}))
	if err != nil {
		t.Fatal(err)
	}
	defer cstream.Close()

	// Both streams deliver the 12 V default first.
	near := func(v float64) func(*svv1.Sample) bool {
		return func(s *svv1.Sample) bool { return math.Abs(s.GetValue().GetDoubleValue()-v) < 0.5 }
	}
	readGRPC := func(what string, ok func(*svv1.Sample) bool) {
		t.Helper()
		for {
			resp, err := gstream.Recv()
			if err != nil {
				t.Fatalf("gRPC stream ended before %s: %v", what, err)
			}
			for _, s := range resp.Samples {
				if s.Device != "psu-07" || s.Channel != "voltage" {
					t.Fatalf("selector leaked %s/%s", s.Device, s.Channel)
				}
				if ok(s) {
					return
				}
			}
		}
	}
	readConnect := func(what string, ok func(*svv1.Sample) bool) {
		t.Helper()
		for cstream.Receive() {
			for _, s := range cstream.Msg().Samples {
				if ok(s) {
					return
				}
			}
		}
		t.Fatalf("Connect stream ended before %s: %v", what, cstream.Err())
	}
	readGRPC("12 V", near(12))
	readConnect("12 V", near(12))

	dev := svv1.NewDeviceServiceClient(conn)
	if _, err := dev.SendCommand(ctx, &svv1.SendCommandRequest{
		Device: "psu-07", Command: &svv1.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{"30"},
	}); err != nil {
		t.Fatal(err)
	}
	if sp := fleet.Instrument("psu-07").SetPoint(); sp != 30 {
		t.Fatalf("simulated set-point is %v after SendCommand, want 30", sp)
	}
	readGRPC("30 V after the command", near(30))
	readConnect("30 V after the command", near(30))
	endStreams()

	// Let the archive work under load for a moment, then stop everything.
	time.Sleep(2 * time.Second)
	stop()
	stopped = true
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	all := published.Drain(nil, 0)
	if len(all) < 1000 {
		t.Fatalf("only %d samples published", len(all))
	}
	if a.writer.Written() != uint64(len(all)) {
		t.Errorf("writer wrote %d rows, %d samples were published", a.writer.Written(), len(all))
	}
	// Every acknowledged write applied, then: as many rows as samples (a re-send
	// would add rows: no DEDUP), each (device, channel, seq) once.
	qctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h, err := ingest.NewHistory(qdb, table)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Visible(qctx); err != nil {
		t.Fatal(err)
	}
	rows, err := ingest.CountRows(qctx, qdb, table, "")
	if err != nil {
		t.Fatal(err)
	}
	distinct, err := ingest.QueryInt(qctx, qdb, `SELECT count() FROM (SELECT DISTINCT device, channel, seq FROM "`+table+`")`)
	if err != nil {
		t.Fatal(err)
	}
	if rows != int64(len(all)) || distinct != rows {
		t.Fatalf("QuestDB holds %d rows, %d distinct (device, channel, seq); %d samples were published", rows, distinct, len(all))
	}
	t.Logf("published %d samples; QuestDB holds %d rows, all distinct, none sent twice", len(all), rows)
}

// waitAllConnected waits until every device of m is connected.
func waitAllConnected(t *testing.T, m *devicemgr.Manager) {
	t.Helper()
	n := 0
	eventually.Truef(t, 30*time.Second, func() string { return fmt.Sprintf("%d of %d devices connected", n, len(m.List())) }, func() bool {
		n = 0
		for _, d := range m.List() {
			if d.State == devicemgr.Connected {
				n++
			}
		}
		return n == len(m.List())
	})
}
