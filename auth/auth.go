// Package auth owns who a caller of the Switchyard API is: roles, identities,
// the bearer tokens file and the names taken from client certificates. It decides
// nothing about RPCs (the server's policy table does) and imports nothing of
// Switchyard.
//
// # Roles
//
// Roles are ordered: Viewer < Operator < Admin; a role may do what the roles
// below it may do.
//
// # Tokens
//
// A token is 32 random bytes, base64url-encoded behind the prefix "syt_". The
// tokens file keeps, per identity, its name, its role and the SHA-256 of its
// token (hex), never the token itself:
//
//	tokens:
//	  - name: alice
//	    role: operator
//	    sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//
// A plain (unsalted, fast) hash is enough because the tokens are random and
// long: there is no dictionary to try, and a leaked file gives nobody a token.
// Tokens re-reads the file when it changes (size, modification time or inode),
// at the next authentication, so tokens are added and revoked without a restart;
// a file that became invalid is refused with an error naming file:line and the
// previous entries stay in force.
//
// # Certificates
//
// A verified client certificate names its holder by its subject's common name
// and its DNS, URI and e-mail subject alternative names; the first of those
// (in that order) that the configuration gives a role to is the identity.
//
// Everything here is safe for concurrent use.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Role is what an identity may do. The zero Role is none: not even viewing.
type Role int

// The roles, in increasing order of power.
const (
	None Role = iota
	Viewer
	Operator
	Admin
)

// Roles lists the roles a configuration may give, in increasing order.
var Roles = []Role{Viewer, Operator, Admin}

// String is the role's name as configurations and the API spell it.
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Operator:
		return "operator"
	case Admin:
		return "admin"
	default:
		return "none"
	}
}

// ParseRole returns the role of a name ("viewer", "operator", "admin").
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if s == r.String() {
			return r, nil
		}
	}
	return None, fmt.Errorf("unknown role %q (want viewer, operator or admin)", s)
}

// Method says how an identity was established.
type Method string

// The methods.
const (
	MethodNone  Method = "none"  // no credentials
	MethodToken Method = "token" // a bearer token
	MethodMTLS  Method = "mtls"  // a verified client certificate
)

// Identity is who a caller is.
type Identity struct {
	// Name is the token entry's or the certificate's name, "anonymous" without
	// credentials.
	Name string
	Role Role
	// Method is how the caller was identified.
	Method Method
	// Authenticated is false for callers without credentials.
	Authenticated bool
}

// Anonymous is the identity of a caller without credentials, given role (Admin
// on a loopback server without authentication, None when authentication is on).
func Anonymous(role Role) Identity {
	return Identity{Name: "anonymous", Role: role, Method: MethodNone}
}

// TokenPrefix starts every token, so a token is recognisable in a leak scan.
const TokenPrefix = "syt_"

// NewToken returns a new random token.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken is what the tokens file keeps of a token: its SHA-256, in hex.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Entry returns the tokens file entry (YAML, one item of tokens:) of an identity
// whose token hashes to hash.
func Entry(name string, role Role, hash string) string {
	return fmt.Sprintf("  - name: %s\n    role: %s\n    sha256: %s\n", yamlString(name), role, hash)
}

// yamlString quotes s for YAML unless it is a plain word.
func yamlString(s string) string {
	plain := s != ""
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c == '@' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			plain = false
		}
	}
	if plain {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// CertNames returns the names a certificate may be known by, in the order they
// are tried: the subject's common name, then DNS, URI and e-mail SANs.
func CertNames(c *x509.Certificate) []string {
	var out []string
	if c.Subject.CommonName != "" {
		out = append(out, c.Subject.CommonName)
	}
	out = append(out, c.DNSNames...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	return append(out, c.EmailAddresses...)
}

// CertRoles gives certificate names their roles.
type CertRoles map[string]Role

// Identify returns the identity of a verified client certificate: its first name
// with a configured role. ok is false when no name has one.
func (m CertRoles) Identify(c *x509.Certificate) (id Identity, ok bool) {
	for _, n := range CertNames(c) {
		if r, has := m[n]; has {
			return Identity{Name: n, Role: r, Method: MethodMTLS, Authenticated: true}, true
		}
	}
	return Identity{}, false
}
