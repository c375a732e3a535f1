package bench

import (
	"bytes"
	"testing"
)

// FuzzParseProc feeds arbitrary text to the /proc parsers: they return an error or
// a value, never panic, and never report negative CPU time.
func FuzzParseProc(f *testing.F) {
	f.Add([]byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 100 0 0"))
	f.Add([]byte("Name:\tswitchyard\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n"))
	f.Add([]byte("1 () R"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cpu, err := ParseStatCPU(data); err == nil && cpu < 0 {
			t.Errorf("ParseStatCPU(%q) = %v", data, cpu)
		}
		_, _, _, _ = ParseStatus(data)
	})
}

// FuzzParseMetrics feeds arbitrary text to the Prometheus text parser.
func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte("# HELP x y\ngo_goroutines 96\nq{a=\"}\"} 3\nbad\nz{} 1e3 1700000000\n"))
	f.Add([]byte("{\n}} 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseMetrics(bytes.NewReader(data))
	})
}
