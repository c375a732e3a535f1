package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// The client verbs authenticate with --token / SWITCHYARD_TOKEN over TLS
// (--tls-ca), or with a client certificate (--tls-cert, --tls-key); the server
// built from a configuration with auth: and tls: enforces roles.
func TestClientVerbsWithAuthAndTLS(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 9})
	pki := servertest.NewPKI(t)
	tokensPath, tokens := servertest.TokensFile(t, map[string]auth.Role{"vera": auth.Viewer, "otto": auth.Operator})
	cfg := demoConfig(fleet)
	cfg.Auth = config.Auth{TokensFile: tokensPath, Certificates: []config.CertIdentity{{Name: "bench-pc", Role: "operator"}}}
	cfg.TLS = config.TLS{CertFile: pki.CertFile, KeyFile: pki.KeyFile, ClientCAFile: pki.CAFile}
	a, _ := startApp(t, cfg)
	waitAllConnected(t, a.devices)
	grpcAddr, _ := a.Addrs()
	verb := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		code := run(append([]string{args[0], "--addr", grpcAddr.String(), "--tls-ca", pki.CAFile}, args[1:]...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	if code, _, stderr := verb("devices"); code != 1 || !strings.Contains(stderr, "unauthenticated") {
		t.Errorf("devices without a token: exit %d, %q", code, stderr)
	}
	if code, out, stderr := verb("devices", "--token", tokens["vera"]); code != 0 || !strings.Contains(out, "psu-01") {
		t.Errorf("devices as viewer: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr := verb("send", "--token", tokens["vera"], "psu-01", "set_voltage", "5"); code != 1 || !strings.Contains(stderr, "needs role operator") {
		t.Errorf("send as viewer: exit %d, %q", code, stderr)
	}
	t.Setenv("SWITCHYARD_TOKEN", tokens["otto"])
	if code, out, stderr := verb("send", "psu-01", "set_voltage", "5"); code != 0 {
		t.Errorf("send as operator (SWITCHYARD_TOKEN): exit %d, %q %q", code, out, stderr)
	}
	t.Setenv("SWITCHYARD_TOKEN", "")
	cert, key := pki.ClientCert("bench-pc")
	if code, out, stderr := verb("send", "--tls-cert", cert, "--tls-key", key, "psu-01", "set_voltage", "6"); code != 0 {
		t.Errorf("send with a client certificate: exit %d, %q %q", code, out, stderr)
	}
	// Plaintext to a TLS port fails.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"devices", "--addr", grpcAddr.String(), "--token", tokens["vera"], "--timeout", "3s"}, &stdout, &stderr); code != 1 {
		t.Errorf("plaintext to the TLS port: exit %d", code)
	}
}

func TestTokenNew(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"token", "new", "--name", "alice", "--role", "operator"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	tok, entry, _ := strings.Cut(stdout.String(), "\n")
	ids, err := auth.ParseTokens("t.yaml", []byte("tokens:\n"+entry))
	if err != nil {
		t.Fatalf("the printed entry does not parse: %v\n%s", err, entry)
	}
	if id := ids[auth.HashToken(tok)]; id.Name != "alice" || id.Role != auth.Operator || strings.Contains(entry, tok) {
		t.Fatalf("entry %q for token %q: %+v", entry, tok, id)
	}
	if code := run([]string{"token", "new", "--name", "x", "--role", "root"}, &stdout, &stderr); code != 2 {
		t.Fatalf("--role root: exit %d", code)
	}
}
