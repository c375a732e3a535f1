package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/ingest"
)

// archive measures Switchyard's archive path against a real QuestDB:
//
//  1. steady: ArchiveRate samples/s pushed through the server for one window;
//     rows in QuestDB with a timestamp in the window against the samples a
//     subscriber saw stamped in it (they must be equal);
//  2. capacity: QuestDB is made unavailable for 5 s (a pausable proxy in the
//     harness answers 503), so the writer builds a backlog; then the rate at which
//     it drains the backlog is Switchyard's archive ceiling;
//  3. raw ceiling: go-questdb-client sending rows of the same shape in batches of
//     the same size straight from the harness, through the same proxy.
//
// Both tables are unique to the run and dropped at the end.
func (r *Runner) archive(ctx context.Context) ([]Result, error) {
	o := r.opts
	if _, err := ingest.QueryInt(ctx, o.QuestDB, "SELECT 1"); err != nil {
		return nil, fmt.Errorf("QuestDB at %s does not answer (start it with scripts/questdb start): %w", o.QuestDB, err)
	}
	px, err := newPauseProxy(o.QuestDB)
	if err != nil {
		return nil, err
	}
	defer px.close()
	stamp := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	table, rawTable := "bench_"+stamp, "bench_raw_"+stamp
	defer func() {
		for _, t := range []string{table, rawTable} {
			_, _, _ = ingest.Query(context.Background(), o.QuestDB, "DROP TABLE IF EXISTS "+t)
		}
	}()
	hz := o.ArchiveRate / float64(4*o.PushDevices)
	sim, err := r.startSim(ctx, 0, o.PushDevices, hz)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	cfg, err := serverConfig(sim.instruments, nil, px.addr, table)
	if err != nil {
		return nil, err
	}
	srv, err := r.startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop(90 * time.Second)
	sub, err := subscribe(ctx, srv.grpc, o.BatchWindow, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sub.stop()
	if err := sleep(ctx, o.Warmup); err != nil {
		return nil, err
	}
	w, err := r.measure(ctx, "archive", srv, []*subscriber{sub})
	if err != nil {
		return nil, err
	}
	st := sub.stats()
	steady := w.row("archive", fmt.Sprintf("steady, offered %.0f/s", o.ArchiveRate), st)

	capRow, err := r.drainCapacity(ctx, srv, px)
	if err != nil {
		return []Result{steady}, err
	}
	sub.stop()
	if err := srv.stop(90 * time.Second); err != nil {
		return []Result{steady}, err
	}
	where := fmt.Sprintf("ts >= CAST(%d AS TIMESTAMP) AND ts < CAST(%d AS TIMESTAMP)", w.from.UnixMicro(), w.to.UnixMicro())
	rows, err := settledCount(ctx, o.QuestDB, table, where, st.n)
	if err != nil {
		return []Result{steady}, err
	}
	steady.Rows, steady.Produced = rows, st.n
	steady.Note = fmt.Sprintf("rows == samples: %s", verdict(rows == st.n && st.drops == 0 && st.squashed == 0))
	if st.drops > 0 || st.squashed > 0 {
		steady.Note += fmt.Sprintf(" (subscriber lost %d dropped and %d squashed, so produced is a lower bound)", st.drops, st.squashed)
	}

	raw, err := rawCeiling(ctx, px.addr, rawTable, 400_000)
	if err != nil {
		return []Result{steady, capRow}, err
	}
	if raw.Rate > 0 && capRow.Rate > 0 {
		ratio := capRow.Rate / raw.Rate
		capRow.Note = fmt.Sprintf("%.0f%% of the raw ceiling (target ≥80%%: %s)", 100*ratio, verdict(ratio >= targetArchiveRatio))
	}
	return []Result{steady, capRow, raw}, nil
}

// drainCapacity pauses QuestDB for 5 s and measures how fast the writer catches up.
func (r *Runner) drainCapacity(ctx context.Context, srv *serverProc, px *pauseProxy) (Result, error) {
	res := newResult("archive", "switchyard backlog drain")
	r.progress("archive: QuestDB unavailable for 5 s to build a backlog")
	px.paused.Store(true)
	err := sleep(ctx, 5*time.Second)
	px.paused.Store(false)
	if err != nil {
		return res, err
	}
	m, err := scrape(ctx, srv.http)
	if err != nil {
		return res, err
	}
	backlog := m["switchyard_ingest_pending_rows"]
	start := m["switchyard_ingest_rows_written_total"]
	var t0 time.Time
	var w0 float64
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return res, err
		}
		m, err := scrape(ctx, srv.http)
		if err != nil {
			return res, err
		}
		written, pending := m["switchyard_ingest_rows_written_total"], m["switchyard_ingest_pending_rows"]
		now := time.Now()
		if t0.IsZero() {
			if written > start {
				t0, w0 = now, written
			}
			continue
		}
		if pending < 5000 {
			secs := now.Sub(t0).Seconds()
			if secs > 0 {
				res.Rate = (written - w0) / secs
			}
			res.Note = fmt.Sprintf("backlog %.0f rows", backlog)
			return res, nil
		}
	}
	return res, errors.New("the archive backlog did not drain within 2 minutes")
}

// settledCount polls the row count (WAL tables apply asynchronously) until it
// reaches want or stops changing for 10 s.
func settledCount(ctx context.Context, addr, table, where string, want int64) (int64, error) {
	var last int64 = -1
	stable := time.Now()
	for {
		n, err := ingest.CountRows(ctx, addr, table, where)
		if err != nil {
			return 0, err
		}
		if n >= want {
			return n, nil
		}
		if n != last {
			last, stable = n, time.Now()
		} else if time.Since(stable) > 10*time.Second {
			return n, nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return n, err
		}
	}
}

// rawCeiling sends n rows shaped like the archive's straight to QuestDB with one
// go-questdb-client sender, in explicit flushes of 5000 rows (the writer's batch).
func rawCeiling(ctx context.Context, addr, table string, n int) (Result, error) {
	res := newResult("archive", "raw go-questdb-client ceiling")
	if _, _, err := ingest.Query(ctx, addr, ingest.CreateTableSQL(table)); err != nil {
		return res, err
	}
	s, err := qdb.LineSenderFromConf(ctx, fmt.Sprintf("http::addr=%s;auto_flush=off;", addr))
	if err != nil {
		return res, err
	}
	defer s.Close(context.Background())
	devices := make([]string, 100)
	for i := range devices {
		devices[i] = fmt.Sprintf("env-%03d", i+1)
	}
	base := time.Now().UnixNano()
	t0 := time.Now()
	for i := range n {
		s.Table(table).
			Symbol("device", devices[i%100]).
			Symbol("channel", [4]string{"temp", "pressure", "flow", "line_seq"}[i%4]).
			Symbol("quality", "GOOD").
			Int64Column("seq", int64(i/400)).
			Float64Column("value_double", 20+float64(i%1000)/1000)
		if err := s.At(ctx, time.Unix(0, base+int64(i)*1000)); err != nil {
			return res, err
		}
		if (i+1)%5000 == 0 || i == n-1 {
			if err := s.Flush(ctx); err != nil {
				return res, err
			}
		}
	}
	res.Rate = float64(n) / time.Since(t0).Seconds()
	res.Note = fmt.Sprintf("%d rows, one sender, flush every 5000", n)
	return res, nil
}

// pauseProxy forwards HTTP to QuestDB, or answers 503 while paused.
type pauseProxy struct {
	addr   string
	paused atomic.Bool
	srv    *http.Server
	done   chan struct{}
}

func newPauseProxy(target string) (*pauseProxy, error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &pauseProxy{addr: ln.Addr().String(), done: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a request cut off at shutdown is expected
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if p.paused.Load() {
			http.Error(w, "paused by the benchmark", http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, req)
	})}
	go func() {
		defer close(p.done)
		_ = p.srv.Serve(ln)
	}()
	return p, nil
}

func (p *pauseProxy) close() {
	_ = p.srv.Close()
	<-p.done
}
