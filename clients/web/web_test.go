package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	web "github.com/switchyard/switchyard/clients/web"
)

func get(t *testing.T, h http.Handler, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestPageAndBundle: / is the page, with a strict content security policy, and
// every script and stylesheet it names is served with its type.
func TestPageAndBundle(t *testing.T) {
	h := web.Handler()
	resp := get(t, h, http.MethodGet, "/", nil)
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET / Content-Type = %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("GET / Content-Security-Policy = %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^":]+)"`).FindAllStringSubmatch(string(body), -1)
	want := map[string]string{"app.js": "text/javascript", "app.css": "text/css"}
	for _, m := range refs {
		ct, ok := want[m[1]]
		if !ok {
			t.Errorf("index.html names %q, not part of the bundle", m[1])
			continue
		}
		delete(want, m[1])
		r := get(t, h, http.MethodGet, "/"+m[1], nil)
		n, _ := io.Copy(io.Discard, r.Body)
		if r.StatusCode != http.StatusOK || n < 100 {
			t.Errorf("GET /%s = %d, %d bytes", m[1], r.StatusCode, n)
		}
		if got := r.Header.Get("Content-Type"); !strings.HasPrefix(got, ct) {
			t.Errorf("GET /%s Content-Type = %q, want %s", m[1], got, ct)
		}
		if r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET /%s without nosniff", m[1])
		}
	}
	for name := range want {
		t.Errorf("index.html does not load %s", name)
	}
}

// TestRevalidation: the answer carries a strong ETag and no-cache, and a
// matching If-None-Match gets 304 without a body.
func TestRevalidation(t *testing.T) {
	h := web.Handler()
	first := get(t, h, http.MethodGet, "/app.js", nil)
	etag := first.Header.Get("ETag")
	if !regexp.MustCompile(`^"[0-9a-f]{24}"$`).MatchString(etag) || first.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, first.Header.Get("Cache-Control"))
	}
	again := get(t, h, http.MethodGet, "/app.js", http.Header{"If-None-Match": {etag}})
	body, _ := io.ReadAll(again.Body)
	if again.StatusCode != http.StatusNotModified || len(body) != 0 {
		t.Errorf("revalidation = %d with %d bytes, want 304 and none", again.StatusCode, len(body))
	}
	if other := get(t, h, http.MethodGet, "/app.css", nil).Header.Get("ETag"); other == etag {
		t.Errorf("app.css and app.js share ETag %s", etag)
	}
}

func TestUnknownPathsAndMethods(t *testing.T) {
	h := web.Handler()
	for _, p := range []string{"/nope", "/index.htm", "/../go.mod", "/dist/app.js", "/app.js/"} {
		if code := get(t, h, http.MethodGet, p, nil).StatusCode; code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, code)
		}
	}
	if code := get(t, h, http.MethodPost, "/", nil).StatusCode; code != http.StatusMethodNotAllowed {
		t.Errorf("POST / = %d, want 405", code)
	}
	if resp := get(t, h, http.MethodHead, "/", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD / = %d", resp.StatusCode)
	}
}
