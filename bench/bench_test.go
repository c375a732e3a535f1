package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := []byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 100 0 0")
	got, err := ParseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 4 * time.Second; got != want {
		t.Errorf("ParseStatCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 x 5 0"} {
		if _, err := ParseStatCPU([]byte(bad)); err == nil {
			t.Errorf("ParseStatCPU(%q): no error", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tswitchyard\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n"
	rss, peak, threads, err := ParseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if rss != 100<<20 || peak != 200<<20 || threads != 12 {
		t.Errorf("ParseStatus = %d, %d, %d", rss, peak, threads)
	}
	if _, _, _, err := ParseStatus([]byte("VmRSS: lots kB\n")); err == nil || !strings.Contains(err.Error(), "VmRSS") {
		t.Errorf("bad VmRSS: err = %v, want one naming VmRSS", err)
	}
	if _, _, _, err := ParseStatus([]byte("Name: x\n")); err == nil {
		t.Error("missing fields: no error")
	}
}

func TestReadProcStatSelf(t *testing.T) {
	ps, err := ReadProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if ps.PeakRSS <= 0 || ps.RSS <= 0 || ps.Threads <= 0 {
		t.Errorf("ReadProcStat(self) = %+v", ps)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 96
switchyard_hub_queue_depth{subscriber="api"} 3
switchyard_hub_queue_depth{subscriber="archive",x="a}b"} 4
weird line
switchyard_ingest_rows_written_total{table="samples"} 1.5e+06 1700000000000
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{"go_goroutines": 96, "switchyard_hub_queue_depth": 7, "switchyard_ingest_rows_written_total": 1.5e6}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if got := m.Max("switchyard_hub_queue_depth"); got != 4 {
		t.Errorf("largest queue depth %v, want 4 (sum 7)", got)
	}
	if got := m.Max("go_goroutines"); got != 96 {
		t.Errorf("largest of one series %v, want 96", got)
	}
}

func TestHistogram(t *testing.T) {
	var h Histogram
	if h.Quantile(0.99) != 0 {
		t.Error("empty histogram: quantile not 0")
	}
	for i := 1; i <= 1000; i++ {
		h.Observe(time.Duration(i) * time.Microsecond)
	}
	h.Observe(-time.Second) // a clock step counts as zero
	near := func(got, want time.Duration) bool {
		return got >= want*97/100 && got <= want*103/100
	}
	if got := h.Quantile(0.5); !near(got, 500*time.Microsecond) {
		t.Errorf("p50 = %v, want ≈500µs", got)
	}
	if got := h.Quantile(0.99); !near(got, 990*time.Microsecond) {
		t.Errorf("p99 = %v, want ≈990µs", got)
	}
	if h.Max() != time.Millisecond || h.Quantile(1) != time.Millisecond {
		t.Errorf("max = %v, q(1) = %v, want 1ms", h.Max(), h.Quantile(1))
	}
	var m Histogram
	m.Merge(&h)
	if m.Count() != 1001 || m.Quantile(0.5) != h.Quantile(0.5) {
		t.Errorf("merged: count %d, p50 %v", m.Count(), m.Quantile(0.5))
	}
}

func TestWriteTableAndCSV(t *testing.T) {
	r := newResult("poll", "switchyard 2×4@10Hz")
	r.Rate, r.CPUPerSample, r.PeakRSS, r.Goroutines = 80, 12500*time.Nanosecond, 30<<20, 40
	r.P50, r.P99, r.Max, r.Overruns, r.Drops = 1500*time.Microsecond, 4*time.Millisecond, 9*time.Millisecond, 0, 0
	r.Note = "a, note"
	var tb, cs, md bytes.Buffer
	if err := WriteTable(&tb, []Result{r}); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&cs, []Result{r}); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, []Result{r}); err != nil {
		t.Fatal(err)
	}
	wantCSV := strings.Join(header, ",") + "\n" +
		`poll,switchyard 2×4@10Hz,80,12.50,-,30.0,40,1.50,4.00,9.00,0,-,0,-,-,-,"a, note"` + "\n"
	if cs.String() != wantCSV {
		t.Errorf("CSV:\n%s\nwant:\n%s", cs.String(), wantCSV)
	}
	lines := strings.Split(strings.TrimSpace(tb.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "scenario") || !strings.Contains(lines[1], "12.50") {
		t.Errorf("table:\n%s", tb.String())
	}
	if !strings.Contains(md.String(), "| poll | switchyard 2×4@10Hz | 80 | 12.50 | - |") {
		t.Errorf("markdown:\n%s", md.String())
	}
}

func TestRunRejectsUnknownScenario(t *testing.T) {
	_, err := Run(context.Background(), []string{"nope"}, Options{Binary: "x"})
	if err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("err = %v, want one naming the scenario", err)
	}
}

// TestSmokePoll builds the switchyard binary and runs a 2-second poll with a few
// devices: the harness's plumbing, not its figures.
func TestSmokePoll(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs processes")
	}
	bin := filepath.Join(t.TempDir(), "switchyard")
	build := exec.Command("go", "build", "-o", bin, "github.com/switchyard/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := t.TempDir()
	res, err := Run(ctx, []string{"poll"}, Options{
		Binary: bin, Devices: []int{3, 2}, Channels: 2, Rate: 20,
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond,
		Progress: &progress, Dir: t.TempDir(), LogDir: logs,
	})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	var cases []string
	for _, r := range res {
		cases = append(cases, r.Case)
	}
	want := []string{"switchyard 3×2@20Hz", "+ 1 subscriber 3×2@20Hz", "floor 3×2@20Hz", "floor, grouped 3×2@20Hz",
		"switchyard 2×2@20Hz", "+ 1 subscriber 2×2@20Hz", "floor 2×2@20Hz", "floor, grouped 2×2@20Hz"}
	if !slices.Equal(cases, want) {
		t.Fatalf("cases = %q, want %q", cases, want)
	}
	for _, r := range res {
		if r.Rate <= 0 || r.CPUPerSample <= 0 {
			t.Errorf("%s: no samples or CPU measured: %+v", r.Case, r)
		}
	}
	for _, i := range []int{1, 2, 3, 5, 6, 7} {
		if res[i].P99 <= 0 {
			t.Errorf("%s: no latency measured: %+v", res[i].Case, res[i])
		}
	}
	for _, i := range []int{0, 4} {
		if res[i].PeakRSS <= 0 || res[i].Goroutines <= 0 {
			t.Errorf("server figures missing: %+v", res[i])
		}
		if !strings.Contains(res[i].Note, "× floor") {
			t.Errorf("%s: no ratio to the floor in the note %q", res[i].Case, res[i].Note)
		}
	}
	if !strings.Contains(progress.String(), soakHeader) {
		t.Errorf("no progress CSV header in:\n%s", progress.String())
	}
	// LogDir keeps each child's whole log: the server's from its first line.
	if b, err := os.ReadFile(filepath.Join(logs, "server-1.log")); err != nil || !strings.Contains(string(b), "device connected") {
		t.Errorf("server-1.log in LogDir: %v, without the devices' connections:\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(logs, "sim.log")); err != nil {
		t.Errorf("sim.log in LogDir: %v", err)
	}
}

// The cluster scenario reports how each node's lease counters moved: none
// but the held count when nothing moved.
func TestLeaseChanges(t *testing.T) {
	a := []Metrics{
		{"switchyard_cluster_leases_held": 100, "switchyard_cluster_leases_acquired_total": 150, "switchyard_cluster_leases_released_total": 50},
		{"switchyard_cluster_leases_held": 100, "switchyard_cluster_leases_acquired_total": 100},
	}
	b := []Metrics{
		{"switchyard_cluster_leases_held": 100, "switchyard_cluster_leases_acquired_total": 150, "switchyard_cluster_leases_released_total": 50},
		{"switchyard_cluster_leases_held": 94, "switchyard_cluster_leases_acquired_total": 103, "switchyard_cluster_fences_total": 9,
			"switchyard_cluster_lease_renewal_failures_total": 20},
	}
	want := "n2 held 100; n3 held 94, acquired 3, fenced 9, renewal failures 20"
	if got := leaseChanges(a, b, 1); got != want {
		t.Errorf("leaseChanges = %q, want %q", got, want)
	}
}
