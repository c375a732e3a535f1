package cluster

import (
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, name := range []string{"psu-01", "", "a.b", "=", "x y*>", "ünï", "A_b-9", "=41"} {
		tok := Token(name)
		if strings.ContainsAny(tok, ".*> \t") || tok == "" {
			t.Errorf("Token(%q) = %q: not a single subject token", name, tok)
		}
		back, err := ParseToken(tok)
		if err != nil || back != name {
			t.Errorf("ParseToken(Token(%q)=%q) = %q, %v", name, tok, back, err)
		}
	}
	if Token("a.b") == Token("a_b") || Token("=41") == Token("A") {
		t.Error("two names share a token")
	}
	for _, bad := range []string{"", "a.b", "=4", "=zz", "=41", "a=2"} {
		if _, err := ParseToken(bad); err == nil {
			t.Errorf("ParseToken(%q) accepted a token Token never makes", bad)
		}
	}
}

func FuzzToken(f *testing.F) {
	for _, s := range []string{"psu-01", "", "a.b", "=3D", "=41", "x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok := Token(s)
		if back, err := ParseToken(tok); err != nil || back != s {
			t.Fatalf("round trip of %q via %q gave %q, %v", s, tok, back, err)
		}
		if name, err := ParseToken(s); err == nil && Token(name) != s {
			t.Fatalf("ParseToken(%q) = %q whose Token is %q", s, name, Token(name))
		}
	})
}
