package server_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/server"
)

var update = flag.Bool("update", false, "rewrite the README's generated role table")

// TestREADMERoleTable keeps the README's role table the one generated from the
// policy table (-update rewrites it).
func TestREADMERoleTable(t *testing.T) {
	const path = "../README.md"
	const begin, end = "<!-- role-table:begin -->\n", "<!-- role-table:end -->"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	i, j := strings.Index(text, begin), strings.Index(text, end)
	if i < 0 || j < i {
		t.Fatalf("%s has no %q ... %q markers", path, begin, end)
	}
	want := server.RoleTable()
	if got := text[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile(path, []byte(text[:i+len(begin)]+want+text[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("the README's role table is not the policy's; run go test ./server -run TestREADMERoleTable -update\nwant:\n%s", want)
	}
}
