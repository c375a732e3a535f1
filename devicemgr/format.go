package devicemgr

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
)

// ReplyFormat is a compiled reply format: either a scanf-like pattern or, when
// the text starts with "re:", a regular expression with named groups.
//
// A scanf-like pattern holds literal text and conversions:
//
//	%f %e %g  a floating-point number (also "+1.2E-03", "nan", "inf")
//	%d        a decimal integer with an optional sign
//	%x        a hexadecimal integer, with or without "0x"
//	%s        a run of non-blank characters
//	%*f ...   a conversion with '*' is matched and skipped (not a value)
//	%%        a literal '%'
//
// A blank in the pattern matches any run of blanks, including none; any other
// literal must match exactly. The whole reply must match (trailing blanks are
// ignored). Values are numbered from 0 in the order of their conversions, skips
// not counted. "VOLT %f;CURR %f" reads "VOLT 12.01;CURR 1.20" as two values.
//
// A regular expression must match the whole reply; each named group
// (?P<name>...) is a value, found by its name.
//
// A format without conversions ("OK") or a regular expression without named
// groups ("re:OK|DONE") yields no value: it only checks the reply, as an
// acknowledgement does.
type ReplyFormat struct {
	src   string
	items []fmtItem
	re    *regexp.Regexp
	n     int // number of values
}

type fmtItem struct {
	lit  string // literal text when conv == 0
	conv byte   // 'f', 'd', 'x', 's' or 0 for a literal, ' ' for blanks
	skip bool
}

// ReplyValues are the values a reply yielded, as text.
type ReplyValues struct {
	byIndex []string
	byName  map[string]string
}

// Len reports how many values there are.
func (v ReplyValues) Len() int { return len(v.byIndex) + len(v.byName) }

// Index returns value i of a scanf-like format.
func (v ReplyValues) Index(i int) (string, bool) {
	if i < 0 || i >= len(v.byIndex) {
		return "", false
	}
	return v.byIndex[i], true
}

// Name returns a named group of a regular expression.
func (v ReplyValues) Name(name string) (string, bool) {
	s, ok := v.byName[name]
	return s, ok
}

// CompileReplyFormat compiles a reply format, naming the problem if it is bad.
func CompileReplyFormat(src string) (*ReplyFormat, error) {
	if len(src) > 1024 {
		return nil, fmt.Errorf("format longer than 1024 bytes")
	}
	if src == "" || src == "re:" {
		return nil, fmt.Errorf("empty format")
	}
	if rest, ok := strings.CutPrefix(src, "re:"); ok {
		re, err := regexp.Compile(`^(?:` + rest + `)\s*$`)
		if err != nil {
			return nil, fmt.Errorf("bad regular expression: %v", err)
		}
		n := 0
		for _, name := range re.SubexpNames() {
			if name != "" {
				n++
			}
		}
		return &ReplyFormat{src: src, re: re, n: n}, nil
	}
	f := &ReplyFormat{src: src}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			f.items = append(f.items, fmtItem{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
			for i+1 < len(src) && (src[i+1] == ' ' || src[i+1] == '\t') {
				i++
			}
			f.items = append(f.items, fmtItem{conv: ' '})
		case c != '%':
			lit.WriteByte(c)
		case i+1 < len(src) && src[i+1] == '%':
			lit.WriteByte('%')
			i++
		default:
			flush()
			i++
			skip := false
			if i < len(src) && src[i] == '*' {
				skip = true
				i++
			}
			if i >= len(src) {
				return nil, fmt.Errorf("format %q ends inside a conversion", src)
			}
			conv := src[i]
			switch conv {
			case 'e', 'g':
				conv = 'f'
			case 'f', 'd', 'x', 's':
			default:
				return nil, fmt.Errorf("format %q: unknown conversion %%%c (want %%f %%e %%g %%d %%x %%s)", src, conv)
			}
			f.items = append(f.items, fmtItem{conv: conv, skip: skip})
			if !skip {
				f.n++
			}
		}
	}
	flush()
	return f, nil
}

// String returns the format's source text.
func (f *ReplyFormat) String() string { return f.src }

// NumValues returns how many values a matching reply yields.
func (f *ReplyFormat) NumValues() int { return f.n }

// IsRegexp reports whether values are found by name rather than index.
func (f *ReplyFormat) IsRegexp() bool { return f.re != nil }

// HasGroup reports whether a regular expression format has the named group.
func (f *ReplyFormat) HasGroup(name string) bool {
	return f.re != nil && f.re.SubexpIndex(name) >= 0
}

// Match parses a reply. The error says where the reply stopped matching and
// carries the reply, bounded, for diagnosis.
func (f *ReplyFormat) Match(reply string) (ReplyValues, error) {
	if f.re != nil {
		m := f.re.FindStringSubmatch(reply)
		if m == nil {
			return ReplyValues{}, fmt.Errorf("reply %q does not match %q", clip(reply), f.src)
		}
		v := ReplyValues{byName: make(map[string]string, f.n)}
		for i, name := range f.re.SubexpNames() {
			if name != "" {
				v.byName[name] = m[i]
			}
		}
		return v, nil
	}
	v := ReplyValues{byIndex: make([]string, 0, f.n)}
	rest := reply
	for _, it := range f.items {
		at := len(reply) - len(rest)
		switch it.conv {
		case 0:
			if !strings.HasPrefix(rest, it.lit) {
				return ReplyValues{}, fmt.Errorf("reply %q: want %q at byte %d (format %q)", clip(reply), it.lit, at, f.src)
			}
			rest = rest[len(it.lit):]
		case ' ':
			rest = strings.TrimLeft(rest, " \t")
		default:
			tok, n, ok := scanToken(it.conv, rest)
			if !ok {
				return ReplyValues{}, fmt.Errorf("reply %q: want %%%c at byte %d (format %q)", clip(reply), it.conv, at, f.src)
			}
			rest = rest[n:]
			if !it.skip {
				v.byIndex = append(v.byIndex, tok)
			}
		}
	}
	if strings.TrimSpace(rest) != "" {
		return ReplyValues{}, fmt.Errorf("reply %q: unexpected %q after the end of format %q", clip(reply), clip(rest), f.src)
	}
	return v, nil
}

// scanToken reads one conversion from the start of s: the value's text (an
// integer in decimal for %x), how many bytes it used, and whether it matched.
func scanToken(conv byte, s string) (string, int, bool) {
	lead := len(s) - len(strings.TrimLeft(s, " \t"))
	s = s[lead:]
	switch conv {
	case 's':
		n := strings.IndexFunc(s, unicode.IsSpace)
		if n < 0 {
			n = len(s)
		}
		return s[:n], lead + n, n > 0
	case 'd':
		n := 0
		if n < len(s) && (s[n] == '+' || s[n] == '-') {
			n++
		}
		d := n
		for n < len(s) && s[n] >= '0' && s[n] <= '9' {
			n++
		}
		return s[:n], lead + n, n > d
	case 'x':
		n := 0
		if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
			n = 2
		}
		d := n
		for n < len(s) && isHex(s[n]) {
			n++
		}
		if n == d {
			return "", 0, false
		}
		u, err := strconv.ParseUint(s[d:n], 16, 64)
		if err != nil {
			return "", 0, false
		}
		return strconv.FormatUint(u, 10), lead + n, true
	default: // 'f'
		// Take the longest prefix made of number characters that parses.
		n := 0
		for n < len(s) && strings.IndexByte("+-.0123456789eEinfatyINFATY", s[n]) >= 0 {
			n++
		}
		n = min(n, 64) // bounds the backtracking below
		for ; n > 0; n-- {
			if _, err := strconv.ParseFloat(s[:n], 64); err == nil {
				return s[:n], lead + n, true
			}
		}
		return "", 0, false
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
