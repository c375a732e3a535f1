// Package ingesttest gives tests a QuestDB server and unique tables in it.
//
// Tests do not start QuestDB themselves: run `scripts/questdb start` and set
// SWITCHYARD_TEST_QUESTDB=127.0.0.1:9000. CI also sets SWITCHYARD_REQUIRE_QUESTDB=1 so
// that a missing server fails the run instead of skipping.
package ingesttest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/internal/eventually"
)

// Environment variables read by QuestDB.
const (
	EnvAddr    = "SWITCHYARD_TEST_QUESTDB"
	EnvRequire = "SWITCHYARD_REQUIRE_QUESTDB"
)

// QuestDB returns the HTTP address ("host:port") of the test QuestDB from
// SWITCHYARD_TEST_QUESTDB. When it is unset the test is skipped, or fails when
// SWITCHYARD_REQUIRE_QUESTDB=1. It also fails the test when the server does not
// answer a query.
func QuestDB(t testing.TB) string {
	t.Helper()
	addr := os.Getenv(EnvAddr)
	if addr == "" {
		msg := "no QuestDB for this test: run `scripts/questdb start` and set " + EnvAddr + "=127.0.0.1:9000"
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg + " (" + EnvRequire + "=1 forbids skipping)")
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := ingest.Query(ctx, addr, "SELECT 1"); err != nil {
		t.Fatalf("QuestDB at %s=%s does not answer: %v", EnvAddr, addr, err)
	}
	return addr
}

var tableSeq atomic.Uint64

// Table returns a table name no other test (in this or another run) uses, and drops
// the table when the test ends.
func Table(t testing.TB, addr string) string {
	t.Helper()
	name := fmt.Sprintf("test_%s_%d_%d_%d", sanitize(t.Name()), os.Getpid(), time.Now().UnixNano()%1e9, tableSeq.Add(1))
	if len(name) > 120 {
		name = name[len(name)-120:]
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, _, err := ingest.Query(ctx, addr, `DROP TABLE IF EXISTS "`+name+`"`); err != nil {
			t.Logf("dropping test table %s: %v", name, err)
		}
	})
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// WaitCount polls until table holds want rows matching where (all rows when where
// is empty), as WAL tables apply writes asynchronously. It fails the test if the
// count does not reach want within timeout, or goes past it.
func WaitCount(t testing.TB, addr, table, where string, want int64, timeout time.Duration) {
	t.Helper()
	var got int64
	var err error
	eventually.Truef(t, timeout, func() string {
		return fmt.Sprintf("table %s where %q: %d rows, want %d (last error: %v)", table, where, got, want, err)
	}, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err = ingest.CountRows(ctx, addr, table, where)
		return err == nil && got >= want
	})
	if got != want {
		t.Fatalf("table %s where %q: %d rows, want %d", table, where, got, want)
	}
}
