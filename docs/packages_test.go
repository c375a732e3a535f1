// Package docs holds the project's documents; its test checks that the code
// keeps to the package map (packages.md).
package docs

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/switchyard/switchyard/"

// arrows reads the map's machine-readable block: package -> allowed imports
// (nil for "*"), and outside module -> the only packages that may import it.
func arrows(t *testing.T) (allowed map[string][]string, only map[string][]string) {
	t.Helper()
	doc, err := os.ReadFile("packages.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := bytes.Cut(doc, []byte("<!-- arrows: begin -->"))
	block, _, ok2 := bytes.Cut(block, []byte("<!-- arrows: end -->"))
	if !ok || !ok2 {
		t.Fatal("packages.md: no arrows block")
	}
	allowed, only = map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(string(block), "\n") {
		name, rest, found := strings.Cut(strings.TrimSpace(line), ":")
		if !found || strings.HasPrefix(name, "`") {
			continue
		}
		deps := strings.Fields(rest)
		switch {
		case strings.HasPrefix(name, "!"):
			only[strings.TrimPrefix(name, "!")] = deps
		case slices.Equal(deps, []string{"*"}):
			allowed[name] = nil
		case slices.Equal(deps, []string{"-"}):
			allowed[name] = []string{}
		default:
			allowed[name] = deps
		}
	}
	return allowed, only
}

type pkg struct {
	ImportPath string
	Imports    []string
}

// TestPackageArrows fails when a package imports across a boundary the map
// forbids, or is missing from the map.
func TestPackageArrows(t *testing.T) {
	allowed, only := arrows(t)
	if len(allowed) < 10 {
		t.Fatalf("the map names %d packages: the arrows block was not read", len(allowed))
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		name := strings.TrimPrefix(p.ImportPath, module)
		may, mapped := allowed[name]
		if !mapped {
			t.Errorf("%s is not on the package map (docs/packages.md): place it there", name)
			continue
		}
		for _, imp := range p.Imports {
			if ours, ok := strings.CutPrefix(imp, module); ok {
				if may != nil && !slices.Contains(may, ours) {
					t.Errorf("%s imports %s: the map (docs/packages.md) does not allow it", name, ours)
				}
				continue
			}
			if who, restricted := only[imp]; restricted && !slices.Contains(who, name) {
				t.Errorf("%s imports %s: only %v may", name, imp, who)
			}
		}
	}
	if seen < len(allowed)-1 {
		t.Errorf("go list found %d packages, the map names %d", seen, len(allowed))
	}
}
