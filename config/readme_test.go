package config_test

import (
	"os"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
)

// TestREADMEWorkedExample: the worked example of the README's "Device models"
// section loads, and its reply formats read the replies the text says the
// instrument gives.
func TestREADMEWorkedExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i := strings.Index(text, "### Worked example")
	j := strings.Index(text[i:], "```yaml\n")
	k := strings.Index(text[i+j+8:], "```")
	if i < 0 || j < 0 || k < 0 {
		t.Fatal("README has no worked example")
	}
	c, err := config.Parse("README.md", []byte(text[i+j+8:i+j+8+k]))
	if err != nil {
		t.Fatal(err)
	}
	replies := map[string]string{
		"v1_set": `"5.000000,0.100000"`, "i1_limit": `"5.000000,0.100000"`, "err_code": `-113,"Undefined header"`,
	}
	for _, ch := range c.Specs()[0].Channels {
		reply, ok := replies[ch.Name]
		if !ok {
			continue
		}
		f, err := devicemgr.CompileReplyFormat(ch.Reply)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.Match(reply)
		if err != nil {
			t.Fatalf("%s: %v", ch.Name, err)
		}
		got, _ := v.Index(ch.Index)
		if f.IsRegexp() {
			got, _ = v.Name(ch.Name)
		}
		want := map[string]string{"v1_set": "5.000000", "i1_limit": "0.100000", "err_code": "-113"}[ch.Name]
		if got != want {
			t.Errorf("%s: %q, want %q", ch.Name, got, want)
		}
	}
}
