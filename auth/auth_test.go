package auth_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/auth"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRoles(t *testing.T) {
	if !(auth.Viewer < auth.Operator && auth.Operator < auth.Admin && auth.None < auth.Viewer) {
		t.Fatal("roles are not ordered viewer < operator < admin")
	}
	for _, r := range auth.Roles {
		got, err := auth.ParseRole(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRole(%q) = %v, %v", r, got, err)
		}
	}
	if _, err := auth.ParseRole("root"); err == nil {
		t.Error(`ParseRole("root") accepted`)
	}
}

func TestNewTokenEntryRoundTrip(t *testing.T) {
	tok, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	other, _ := auth.NewToken()
	if !strings.HasPrefix(tok, auth.TokenPrefix) || len(tok) < 40 || tok == other {
		t.Fatalf("NewToken = %q, %q", tok, other)
	}
	file := "tokens:\n" + auth.Entry("alice smith", auth.Operator, auth.HashToken(tok))
	if strings.Contains(file, tok) {
		t.Fatal("the entry holds the token itself")
	}
	ids, err := auth.ParseTokens("t.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	id := ids[auth.HashToken(tok)]
	if id.Name != "alice smith" || id.Role != auth.Operator || id.Method != auth.MethodToken || !id.Authenticated {
		t.Fatalf("identity = %+v", id)
	}
}

func TestParseTokensErrors(t *testing.T) {
	h := auth.HashToken("x")
	text := `tokens:
  - name: a
    role: operator
    sha256: ` + h + `
  - name: a
    role: root
    sha256: abc
  - role: viewer
    sha256: ` + h + `
    color: red
`
	_, err := auth.ParseTokens("tokens.yaml", []byte(text))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`tokens.yaml:5: tokens[1].name: duplicate name "a" (also tokens[0])`,
		"tokens.yaml:6: tokens[1].role: unknown role \"root\"",
		"tokens.yaml:7: tokens[1].sha256: want 64 lower-case hex digits",
		"tokens.yaml:8: tokens[2].name: required",
		`tokens.yaml:9: tokens[2].sha256: the same token as "a"`,
		"tokens.yaml:10: tokens[2].color: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// Tokens picks up an edited file at the next lookup, without a restart, and
// keeps the tokens in force when the edit is invalid.
func TestTokensReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	write := func(s string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		// A distinct mtime per version, however coarse the file system's clock.
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	write("tokens:\n"+auth.Entry("alice", auth.Viewer, auth.HashToken("ta")), base)
	tokens, err := auth.LoadTokens(path, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := tokens.Lookup("ta"); !ok || id.Name != "alice" || id.Role != auth.Viewer {
		t.Fatalf("Lookup(ta) = %+v, %v", id, ok)
	}
	if _, ok := tokens.Lookup("tb"); ok {
		t.Fatal("unknown token accepted")
	}

	// alice is promoted, bob added.
	write("tokens:\n"+auth.Entry("alice", auth.Admin, auth.HashToken("ta"))+auth.Entry("bob", auth.Operator, auth.HashToken("tb")), base.Add(time.Second))
	if id, ok := tokens.Lookup("tb"); !ok || id.Name != "bob" {
		t.Fatalf("after the edit Lookup(tb) = %+v, %v", id, ok)
	}
	if id, _ := tokens.Lookup("ta"); id.Role != auth.Admin {
		t.Fatalf("after the edit alice is %v", id.Role)
	}

	// A broken edit keeps what was in force.
	write("tokens:\n  - name: carol\n    role: wizard\n", base.Add(2*time.Second))
	if _, ok := tokens.Lookup("tb"); !ok {
		t.Fatal("a broken tokens file revoked the tokens in force")
	}
	// bob is revoked.
	write("tokens:\n"+auth.Entry("alice", auth.Admin, auth.HashToken("ta")), base.Add(3*time.Second))
	if _, ok := tokens.Lookup("tb"); ok {
		t.Fatal("a revoked token is still accepted")
	}
	if tokens.Len() != 1 {
		t.Fatalf("Len = %d", tokens.Len())
	}
}

func TestLoadTokensRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	os.WriteFile(path, []byte("tokens:\n  - name: x\n"), 0o600)
	_, err := auth.LoadTokens(path, quiet())
	if err == nil || !strings.Contains(err.Error(), path+":2: tokens[0].role: required") {
		t.Fatalf("LoadTokens = %v", err)
	}
}

func TestCertRoles(t *testing.T) {
	u, _ := url.Parse("spiffe://lab/gui")
	c := &x509.Certificate{Subject: pkix.Name{CommonName: "gui-01"}, DNSNames: []string{"gui.lab"}, URIs: []*url.URL{u}}
	roles := auth.CertRoles{"gui.lab": auth.Operator, "spiffe://lab/gui": auth.Admin}
	id, ok := roles.Identify(c)
	if !ok || id.Name != "gui.lab" || id.Role != auth.Operator || id.Method != auth.MethodMTLS {
		t.Fatalf("Identify = %+v, %v (the DNS name comes before the URI)", id, ok)
	}
	if _, ok := (auth.CertRoles{"other": auth.Admin}).Identify(c); ok {
		t.Fatal("a certificate without a configured name got an identity")
	}
}

func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("tokens:\n" + auth.Entry("a", auth.Admin, auth.HashToken("x"))))
	f.Add([]byte("tokens: [1, {name: 2}]\n"))
	f.Add([]byte("- a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ids, err := auth.ParseTokens("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		for h, id := range ids {
			if len(h) != 64 || id.Name == "" || id.Role == auth.None {
				t.Fatalf("accepted %q: %+v", h, id)
			}
		}
	})
}
