package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// Tokens is a tokens file kept current (see the package doc). Create it with
// LoadTokens.
type Tokens struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	stamp  fileStamp
	byHash map[string]Identity
	bad    fileStamp // a stamp whose file was refused (logged once)
}

// fileStamp tells whether a file changed since it was read.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	st := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

// LoadTokens reads a tokens file; its errors name file:line and the field. log
// (nil: slog.Default) hears about reloads and refused changes.
func LoadTokens(path string, log *slog.Logger) (*Tokens, error) {
	if log == nil {
		log = slog.Default()
	}
	t := &Tokens{path: path, log: log}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	byHash, err := ParseTokens(path, data)
	if err != nil {
		return nil, err
	}
	t.stamp, t.byHash = stampOf(fi), byHash
	return t, nil
}

// Lookup returns the identity of a token, re-reading the file first if it
// changed. ok is false for a token the file does not hold.
func (t *Tokens) Lookup(token string) (Identity, bool) {
	h := HashToken(token)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reloadLocked()
	id, ok := t.byHash[h]
	return id, ok
}

// Len returns how many tokens are in force.
func (t *Tokens) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reloadLocked()
	return len(t.byHash)
}

// reloadLocked re-reads the file if its stamp changed. A file that cannot be
// read or parsed leaves the entries in force as they were (and is logged once
// per change): a typo must not lock every operator out, nor let anyone in.
func (t *Tokens) reloadLocked() {
	fi, err := os.Stat(t.path)
	if err != nil {
		if t.bad != (fileStamp{}) {
			return
		}
		t.bad = fileStamp{size: -1}
		t.log.Error("tokens file unreadable; keeping the tokens in force", "file", t.path, "err", err)
		return
	}
	st := stampOf(fi)
	if st == t.stamp || st == t.bad {
		return
	}
	data, err := os.ReadFile(t.path)
	if err == nil {
		var byHash map[string]Identity
		if byHash, err = ParseTokens(t.path, data); err == nil {
			t.stamp, t.byHash, t.bad = st, byHash, fileStamp{}
			t.log.Info("tokens file reloaded", "file", t.path, "tokens", len(byHash))
			return
		}
	}
	t.bad = st
	t.log.Error("tokens file refused; keeping the tokens in force", "file", t.path, "err", err)
}

var hashRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ParseTokens checks a tokens file's text and returns its identities by token
// hash. Errors name file:line and the field ("tokens.yaml:7: tokens[1].role:
// unknown role ...").
func ParseTokens(name string, data []byte) (map[string]Identity, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	out := map[string]Identity{}
	if len(root.Content) == 0 {
		return out, nil // an empty file: no tokens
	}
	var errs []error
	bad := func(line int, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s: %s", name, line, field, fmt.Sprintf(format, args...)))
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping with a tokens list", name, doc.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if k.Value != "tokens" {
			bad(k.Line, k.Value, "unknown key (want tokens)")
			continue
		}
		list = v
	}
	if list != nil && list.Kind != yaml.SequenceNode && !(list.Kind == yaml.ScalarNode && list.Tag == "!!null") {
		bad(list.Line, "tokens", "want a list of entries")
		list = nil
	}
	names := map[string]int{}
	for i, item := range listItems(list) {
		at := fmt.Sprintf("tokens[%d]", i)
		if item.Kind != yaml.MappingNode {
			bad(item.Line, at, "want name, role and sha256")
			continue
		}
		fields := map[string]*yaml.Node{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			switch k.Value {
			case "name", "role", "sha256":
				if v.Kind != yaml.ScalarNode {
					bad(v.Line, at+"."+k.Value, "want a string")
					continue
				}
				fields[k.Value] = v
			default:
				bad(k.Line, at+"."+k.Value, "unknown key (want name, role, sha256)")
			}
		}
		id := Identity{Method: MethodToken, Authenticated: true}
		ok := true
		if n := fields["name"]; n == nil || n.Value == "" {
			bad(item.Line, at+".name", "required")
			ok = false
		} else {
			id.Name = n.Value
			if prev, dup := names[n.Value]; dup {
				bad(n.Line, at+".name", "duplicate name %q (also tokens[%d])", n.Value, prev)
				ok = false
			}
			names[n.Value] = i
		}
		if r := fields["role"]; r == nil {
			bad(item.Line, at+".role", "required")
			ok = false
		} else if role, err := ParseRole(r.Value); err != nil {
			bad(r.Line, at+".role", "%v", err)
			ok = false
		} else {
			id.Role = role
		}
		h := fields["sha256"]
		switch {
		case h == nil:
			bad(item.Line, at+".sha256", "required (switchyard token new prints it)")
			ok = false
		case !hashRE.MatchString(h.Value):
			bad(h.Line, at+".sha256", "want 64 lower-case hex digits (the token's SHA-256), got %d characters", len(h.Value))
			ok = false
		case out[h.Value].Name != "":
			bad(h.Line, at+".sha256", "the same token as %q", out[h.Value].Name)
			ok = false
		}
		if ok {
			out[h.Value] = id
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func listItems(n *yaml.Node) []*yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	return n.Content
}
