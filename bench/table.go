package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of the output table: one measured configuration of a scenario.
// A zero or negative figure means "not measured" and prints as "-".
type Result struct {
	// Scenario is the scenario's name; Case says what this row measured
	// (e.g. "switchyard", "floor", "slow=1").
	Scenario, Case string
	// Rate is the samples (or round trips, for command) per second delivered.
	Rate float64
	// CPUPerSample is the measured process's CPU per sample (or round trip).
	CPUPerSample time.Duration
	// QuestDBCPUPerSample is QuestDB's CPU per archived sample over the same
	// window (archive only).
	QuestDBCPUPerSample time.Duration
	// PeakRSS is the measured process's VmHWM in bytes.
	PeakRSS int64
	// Goroutines is the server's go_goroutines at the end of the run.
	Goroutines int
	// P50, P99 and Max are device → subscriber latency (round-trip latency for
	// command).
	P50, P99, Max time.Duration
	// Overruns counts poll cycles that overran their period; Jitter is the p99 of
	// |interval − period| between consecutive samples of a channel.
	Overruns int64
	Jitter   time.Duration
	// Drops and Squashed are the per-subscriber loss figures, the largest
	// subscriber's counts in the window: samples its server queue dropped, and
	// samples it replaced by a later one of their channel (an API stream
	// squashes when its client falls behind).
	Drops, Squashed int64
	// Rows is rows found in QuestDB and Produced the samples produced over the same
	// window (archive: as seen by a lossless count of the window's timestamps;
	// push and poll: published by the server's hub). -1 when not measured.
	Rows, Produced int64
	// Note is a short free-text remark: a target verdict, a caveat.
	Note string

	window float64 // seconds measured, for notes computed later
}

var header = []string{"scenario", "case", "samples/s", "cpu_us/sample", "qdb_cpu_us/sample", "peak_rss_mb", "goroutines",
	"p50_ms", "p99_ms", "max_ms", "overruns", "jitter_p99_ms", "drops", "squashed", "rows", "produced", "note"}

func (r *Result) fields() []string {
	dash := func(ok bool, s string) string {
		if !ok {
			return "-"
		}
		return s
	}
	ms := func(d time.Duration) string {
		return dash(d > 0, strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64))
	}
	return []string{
		r.Scenario, r.Case,
		dash(r.Rate > 0, strconv.FormatFloat(r.Rate, 'f', 0, 64)),
		dash(r.CPUPerSample > 0, strconv.FormatFloat(float64(r.CPUPerSample)/1e3, 'f', 2, 64)),
		dash(r.QuestDBCPUPerSample > 0, strconv.FormatFloat(float64(r.QuestDBCPUPerSample)/1e3, 'f', 2, 64)),
		dash(r.PeakRSS > 0, strconv.FormatFloat(float64(r.PeakRSS)/(1<<20), 'f', 1, 64)),
		dash(r.Goroutines > 0, strconv.Itoa(r.Goroutines)),
		ms(r.P50), ms(r.P99), ms(r.Max),
		dash(r.Overruns >= 0, strconv.FormatInt(r.Overruns, 10)),
		ms(r.Jitter),
		dash(r.Drops >= 0, strconv.FormatInt(r.Drops, 10)),
		dash(r.Squashed >= 0, strconv.FormatInt(r.Squashed, 10)),
		dash(r.Rows >= 0, strconv.FormatInt(r.Rows, 10)),
		dash(r.Produced >= 0, strconv.FormatInt(r.Produced, 10)),
		r.Note,
	}
}

// newResult returns a Result with every count marked "not measured".
func newResult(scenario, cs string) Result {
	return Result{Scenario: scenario, Case: cs, Overruns: -1, Drops: -1, Squashed: -1, Rows: -1, Produced: -1}
}

// WriteTable prints results as an aligned text table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i := range results {
		fmt.Fprintln(tw, strings.Join(results[i].fields(), "\t"))
	}
	return tw.Flush()
}

// WriteMarkdown prints results as a Markdown table (for the README).
func WriteMarkdown(w io.Writer, results []Result) error {
	fmt.Fprintf(w, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(header)))
	for i := range results {
		if _, err := fmt.Fprintf(w, "| %s |\n", strings.Join(results[i].fields(), " | ")); err != nil {
			return err
		}
	}
	return nil
}

// WriteCSV prints results as CSV with a header line.
func WriteCSV(w io.Writer, results []Result) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(header)
	for i := range results {
		_ = cw.Write(results[i].fields())
	}
	cw.Flush()
	return cw.Error()
}
