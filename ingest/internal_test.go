package ingest

import (
	"strings"
	"testing"
)

func TestValidateTableName(t *testing.T) {
	for name, ok := range map[string]bool{
		"samples": true, "test_a_1": true, "with space": true, "a.b": true,
		"": false, ".a": false, "a.": false, "a/b": false, `a"b`: false, "a\nb": false,
		strings.Repeat("x", 128): false,
	} {
		if err := validateTableName(name); (err == nil) != ok {
			t.Errorf("validateTableName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}
