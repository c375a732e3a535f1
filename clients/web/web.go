// Package web serves the browser dashboard: the page and its bundle, built from
// the TypeScript sources in src/ by `scripts/web build` into dist/, which is
// committed and embedded here, so `go build` of a fresh clone serves a working
// page without Node. `scripts/web check` (run by scripts/test) fails when dist/
// is not what the sources and package-lock.json build.
//
// The page is a client of the API like any other: it talks Connect to the
// services on the same HTTP port and has no endpoint of its own. Handler is
// safe for concurrent use.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"sync"
	"time"
)

//go:embed dist
var dist embed.FS

// contentSecurityPolicy allows only the page's own script and style and calls to
// its own origin: a script injected through data the page shows cannot run, so
// it cannot read the bearer token from sessionStorage. uPlot sets inline styles.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type asset struct {
	body        []byte
	etag        string
	contentType string
}

var assets = sync.OnceValues(func() (map[string]asset, error) {
	out := map[string]asset{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		out["/"+p[len("dist/"):]] = asset{body: body, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	return out, err
})

// Handler serves the dashboard: / is the page, /app.js and /app.css its bundle.
// Every answer carries a strong ETag and Cache-Control: no-cache, so a browser
// revalidates (304) and never runs a stale bundle against a newer server. Any
// other path is 404; methods other than GET and HEAD are 405.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		files, err := assets()
		if err != nil {
			http.Error(w, "dashboard assets unreadable: "+err.Error(), http.StatusInternalServerError)
			return
		}
		name := r.URL.Path
		if name == "/" {
			name = "/index.html"
		}
		a, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.contentType)
		h.Set("ETag", a.etag)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		if name == "/index.html" {
			h.Set("Content-Security-Policy", contentSecurityPolicy)
			h.Set("X-Frame-Options", "DENY")
		}
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
