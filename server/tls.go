package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// TLS names the files of the server's certificate and, for client certificates
// (mTLS identities), the CA that signs them. The files are read at start and
// again when they change (checked at each new connection), so a renewed
// certificate is served without a restart.
type TLS struct {
	// CertFile and KeyFile are the PEM certificate chain and private key. Both
	// or neither.
	CertFile, KeyFile string
	// ClientCAFile, when set, is the PEM bundle of CAs whose client certificates
	// the server verifies (clients without a certificate may still use a token).
	ClientCAFile string
}

func (t TLS) enabled() bool { return t.CertFile != "" }

// tlsFiles is the server's TLS material, re-read when a file changes. A change
// that does not load (a half-written file) keeps the material in force.
type tlsFiles struct {
	opts TLS
	log  *slog.Logger

	mu      sync.Mutex
	stamps  [3]time.Time // modification times of cert, key, CA
	sizes   [3]int64
	cert    *tls.Certificate
	clients *x509.CertPool // nil without ClientCAFile
}

func newTLSFiles(opts TLS, log *slog.Logger) (*tlsFiles, error) {
	if opts.KeyFile == "" {
		return nil, errors.New("tls: key_file is required with cert_file")
	}
	f := &tlsFiles{opts: opts, log: log}
	stamps, sizes, err := f.stat()
	if err != nil {
		return nil, err
	}
	if err := f.load(stamps, sizes); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *tlsFiles) stat() (stamps [3]time.Time, sizes [3]int64, err error) {
	for i, p := range []string{f.opts.CertFile, f.opts.KeyFile, f.opts.ClientCAFile} {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return stamps, sizes, fmt.Errorf("tls: %w", err)
		}
		stamps[i], sizes[i] = fi.ModTime(), fi.Size()
	}
	return stamps, sizes, nil
}

func (f *tlsFiles) load(stamps [3]time.Time, sizes [3]int64) error {
	cert, err := tls.LoadX509KeyPair(f.opts.CertFile, f.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("tls: cert_file %s, key_file %s: %w", f.opts.CertFile, f.opts.KeyFile, err)
	}
	var pool *x509.CertPool
	if f.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(f.opts.ClientCAFile)
		if err != nil {
			return fmt.Errorf("tls: client_ca_file: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls: client_ca_file %s: no PEM certificate in it", f.opts.ClientCAFile)
		}
	}
	f.cert, f.clients, f.stamps, f.sizes = &cert, pool, stamps, sizes
	return nil
}

// current returns the material in force, re-reading the files if they changed.
func (f *tlsFiles) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	stamps, sizes, err := f.stat()
	if err == nil && (stamps != f.stamps || sizes != f.sizes) {
		if err = f.load(stamps, sizes); err == nil {
			f.log.Info("TLS certificate reloaded", "cert_file", f.opts.CertFile)
		}
	}
	if err != nil {
		f.log.Error("TLS files not reloaded; serving the previous certificate", "err", err)
	}
	return f.cert, f.clients
}

// config returns the tls.Config of a port that negotiates the given ALPN
// protocols; every handshake gets the material in force.
func (f *tlsFiles) config(protos []string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: protos,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, clients := f.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   protos,
				Certificates: []tls.Certificate{*cert},
			}
			if clients != nil {
				c.ClientCAs = clients
				c.ClientAuth = tls.VerifyClientCertIfGiven
			}
			return c, nil
		},
	}
}
