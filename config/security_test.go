package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/config"
)

func TestSecuritySections(t *testing.T) {
	text := `listen:
  grpc: 0.0.0.0:7400
  http: 127.0.0.1:7480
auth:
  tokens_file: tokens.yaml
  certificates:
    - name: gui.lab
      role: operator
    - name: gui.lab
      role: wizard
tls:
  key_file: server-key.pem
http:
  allowed_hosts: [panel.lab, "bad host"]
  cors_origins: [panel.lab]
limits:
  streams: -1
  command_rate: -2
devices: []
`
	_, err := config.Parse("sy.yaml", []byte(text))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"sy.yaml:2: listen.grpc: 0.0.0.0:7400 is not a loopback address: it needs tls: and auth:, or insecure: true",
		`sy.yaml:9: auth.certificates[1].name: duplicate name "gui.lab" (also auth.certificates[0])`,
		`sy.yaml:10: auth.certificates[1].role: unknown role "wizard"`,
		"sy.yaml:6: auth.certificates: needs tls.client_ca_file",
		"sy.yaml:11: tls: cert_file and key_file go together",
		`sy.yaml:14: http.allowed_hosts[1]: want a host name without port, got "bad host"`,
		`sy.yaml:15: http.cors_origins[0]: want an origin such as "https://panel.lab", got "panel.lab"`,
		"sy.yaml:17: limits.streams: must be >= 0",
		"sy.yaml:18: limits.command_rate: must be a finite number >= 0",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
}

func TestSecurityInsecureAndPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sy.yaml")
	text := "listen:\n  grpc: 0.0.0.0:7400\ninsecure: true\nauth:\n  tokens_file: tokens.yaml\ntls:\n  cert_file: s.pem\n  key_file: /abs/k.pem\n  client_ca_file: ca.pem\n  \nauth_extra: 1\n"
	os.WriteFile(path, []byte(strings.Replace(text, "auth_extra: 1\n", "", 1)+"devices: []\n"), 0o600)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Insecure || c.Auth.TokensFile != filepath.Join(dir, "tokens.yaml") || c.TLS.CertFile != filepath.Join(dir, "s.pem") || c.TLS.KeyFile != "/abs/k.pem" || !c.AuthOn() {
		t.Fatalf("config %+v %+v", c.Auth, c.TLS)
	}
	c2, err := config.Parse("x.yaml", []byte("auth:\n  certificates:\n    - {name: a, role: admin}\ntls: {cert_file: s, key_file: k, client_ca_file: ca}\ndevices: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := c2.CertRoles(); r["a"] != auth.Admin {
		t.Fatalf("CertRoles = %v", r)
	}
}

// The README's Security section shows a configuration that loads.
func TestREADMESecurityExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "## Security")
	j := strings.Index(text[i:], "```yaml\n")
	if i < 0 || j < 0 {
		t.Fatal("README has no Security example")
	}
	block := text[i+j+8:]
	block = block[:strings.Index(block, "```")]
	c, err := config.Parse("README.md", []byte(block+"devices: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.AuthOn() || c.TLS.ClientCAFile == "" || len(c.HTTP.CORSOrigins) != 1 {
		t.Fatalf("parsed %+v", c)
	}
}
