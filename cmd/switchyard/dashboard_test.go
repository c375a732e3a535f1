package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

// TestServesDashboard: the binary serves the browser dashboard at / of its HTTP
// port, beside the API, /healthz and /metrics.
func TestServesDashboard(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.yaml")
	if err := os.WriteFile(path, []byte(okConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	_, h := a.Addrs()
	base := "http://" + h.String()
	client := &http.Client{Timeout: 30 * time.Second}
	get := func(p string) (int, string) {
		resp, err := client.Get(base + p)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	// The port listens from newApp on; a request waits until the API serves it.
	if code, body := get("/"); code != http.StatusOK || !strings.Contains(body, `<div id="app">`) || !strings.Contains(body, `src="app.js"`) {
		t.Fatalf("GET / = %d %.200s", code, body)
	}
	for _, p := range []string{"/app.js", "/healthz", "/metrics"} {
		if code, _ := get(p); code != http.StatusOK {
			t.Errorf("GET %s = %d", p, code)
		}
	}
	if code, _ := get("/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/ = %d without --pprof, want 404", code)
	}
}
