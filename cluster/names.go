package cluster

import (
	"fmt"
	"strings"
)

// Token encodes a device or channel name as one NATS subject token and key-value
// key segment. Letters, digits, '-' and '_' stand for themselves; every other
// byte (including '.', which separates tokens, and '=' itself) is written as
// '=' and two upper-case hex digits, so the encoding is one-to-one and
// ParseToken inverts it.
func Token(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		if !plain(name[i]) {
			clean = false
			break
		}
	}
	if clean && name != "" {
		return name
	}
	var b strings.Builder
	b.Grow(len(name) + 8)
	if name == "" {
		return "=" // the empty name; no other name encodes to a bare '='
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	return b.String()
}

// ParseToken decodes a Token.
func ParseToken(tok string) (string, error) {
	if tok == "=" {
		return "", nil
	}
	if tok == "" {
		return "", fmt.Errorf("empty token")
	}
	if !strings.Contains(tok, "=") {
		for i := 0; i < len(tok); i++ {
			if !plain(tok[i]) {
				return "", fmt.Errorf("token %q: byte %q must be escaped", tok, tok[i])
			}
		}
		return tok, nil
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(tok) && isUpperHex(tok[i+1]) && isUpperHex(tok[i+2]):
			b.WriteByte(unhex(tok[i+1])<<4 | unhex(tok[i+2]))
			i += 2
		default:
			return "", fmt.Errorf("token %q: bad escape at byte %d", tok, i)
		}
	}
	s := b.String()
	if Token(s) != tok {
		return "", fmt.Errorf("token %q: not in canonical form", tok)
	}
	return s, nil
}

func plain(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
