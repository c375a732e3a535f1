package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of a Prometheus text endpoint: every sample's value summed
// over its labels, by metric name (and, under maxKey(name), the largest series'
// value; see Max).
type Metrics map[string]float64

// maxKey is where Metrics keeps a metric's largest series (a space cannot be in a
// metric name).
func maxKey(name string) string { return name + " max" }

// Max returns the largest value among the metric's series (0 if none).
func (m Metrics) Max(name string) float64 { return m[maxKey(name)] }

// ParseMetrics reads the Prometheus text format and sums each metric over its label
// sets. Comment lines and lines it cannot read are skipped: a scrape is a
// measurement, and one odd line must not lose the rest.
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				continue
			}
			rest = rest[j+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if _, seen := m[name]; !seen || v > m[maxKey(name)] {
			m[maxKey(name)] = v
		}
		m[name] += v
	}
	return m, sc.Err()
}

// scrape fetches http://addr/metrics.
func scrape(ctx context.Context, addr string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}
