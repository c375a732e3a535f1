package audit_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
)

// TestArchive: records are rows of their own table, numbered per identity
// (the DEDUP key), through a spool.
func TestArchive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := ingesttest.NewFakeDB()
		a, err := audit.NewArchive(db, ingest.Options{SpoolDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- a.Serve(ctx) }()
		at := time.Now()
		for i, who := range []string{"ops", "", "ops"} {
			a.Record(audit.Record{Time: at.Add(time.Duration(i) * time.Millisecond), Identity: who, Role: "operator",
				RPC: "/switchyard.v1.DeviceService/SendCommand", Device: "psu-01", Target: "set_voltage",
				Args: []string{"24"}, Code: "OK", Duration: 1500 * time.Microsecond})
		}
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		rows := db.Stored(audit.DefaultTable)
		if len(rows) != 3 {
			t.Fatalf("%d rows, want 3", len(rows))
		}
		for i, want := range []struct {
			who string
			seq int64
		}{{"ops", 1}, {"anonymous", 1}, {"ops", 2}} {
			r := rows[i]
			if r.Str("identity") != want.who || r.Int("seq") != want.seq || r.Str("args") != `["24"]` ||
				r.Int("duration_us") != 1500 || r.Str("device") != "psu-01" {
				t.Errorf("row %d: %+v, want identity %s seq %d", i, r.Cols, want.who, want.seq)
			}
		}
	})
}
