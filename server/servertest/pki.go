package servertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard/switchyard/auth"
)

// PKI is a certificate authority made for one test, with a server certificate
// for 127.0.0.1, ::1 and localhost. Its files are in a temporary directory.
type PKI struct {
	// CAFile is the CA certificate (PEM): the server's tls.client_ca_file and
	// the clients' root.
	CAFile string
	// CertFile and KeyFile are the server's certificate and key (PEM).
	CertFile, KeyFile string
	// Pool holds the CA, for Go clients.
	Pool *x509.CertPool

	t      testing.TB
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// NewPKI makes a CA and a server certificate signed by it.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{t: t, dir: t.TempDir(), serial: 1}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchyard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.ca, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.CAFile = p.write("ca.pem", "CERTIFICATE", der)
	p.Pool = x509.NewCertPool()
	p.Pool.AddCert(p.ca)
	p.CertFile, p.KeyFile = p.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "switchyard test server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return p
}

// ClientCert issues a client certificate whose subject's common name is name
// and returns its certificate and key files.
func (p *PKI) ClientCert(name string) (certFile, keyFile string) {
	p.t.Helper()
	return p.issue("client-"+name, &x509.Certificate{
		Subject: pkix.Name{CommonName: name}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// ReissueServer writes a new server certificate over the old files (same
// names), with the given common name, as a certificate renewal does.
func (p *PKI) ReissueServer(commonName string) {
	p.t.Helper()
	cert, key := p.issue("server-next", &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	for _, f := range [][2]string{{cert, p.CertFile}, {key, p.KeyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			p.t.Fatal(err)
		}
		// Write beside, then rename: the server never reads a half-written file.
		tmp := f[1] + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			p.t.Fatal(err)
		}
		// A later modification time than the first, however coarse the clock.
		later := time.Now().Add(time.Duration(p.serial) * time.Second)
		_ = os.Chtimes(tmp, later, later)
		if err := os.Rename(tmp, f[1]); err != nil {
			p.t.Fatal(err)
		}
	}
}

// ClientTLS returns a client tls.Config trusting the CA, with the client
// certificate of the given files (none when empty).
func (p *PKI) ClientTLS(certFile, keyFile string) *tls.Config {
	p.t.Helper()
	c := &tls.Config{RootCAs: p.Pool, ServerName: "127.0.0.1"}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			p.t.Fatal(err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c
}

func (p *PKI) issue(name string, tmpl *x509.Certificate) (certFile, keyFile string) {
	p.t.Helper()
	p.serial++
	key := newKey(p.t)
	tmpl.SerialNumber = big.NewInt(p.serial)
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		p.t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return p.write(name+".pem", "CERTIFICATE", der), p.write(name+"-key.pem", "EC PRIVATE KEY", kder)
}

func (p *PKI) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TokensFile writes a tokens file with one new token per role name given
// (name → role) and returns its path and the tokens by name.
func TokensFile(t testing.TB, roles map[string]auth.Role) (path string, tokens map[string]string) {
	t.Helper()
	tokens = map[string]string{}
	text := "tokens:\n"
	for name, role := range roles {
		tok, err := auth.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok
		text += auth.Entry(name, role, auth.HashToken(tok))
	}
	path = filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, tokens
}
