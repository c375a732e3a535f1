package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const okConfig = `listen:
  grpc: 127.0.0.1:0
  http: 127.0.0.1:0
devices:
  - name: psu-01
    address: 127.0.0.1:5025
    driver: scpi
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms}
  - name: psu-02
    address: 127.0.0.1:5026
    driver: scpi
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms}
`

// TestServeRefusesBadConfig: each mistake is refused before anything starts, with
// an error naming the file, line and field, and a non-zero exit code.
func TestServeRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct{ name, from, to, want string }{
		{"unknown key", "    driver: scpi\n    channels", "    driver: scpi\n    polling: fast\n    channels", `cfg.yaml:8: devices[0]: unknown key "polling"`},
		{"missing address", "    address: 127.0.0.1:5026\n", "", "cfg.yaml:10: devices[1].address: required"},
		{"period zero", "period: 100ms}\n  - name: psu-02", "period: 0s}\n  - name: psu-02", "cfg.yaml:9: devices[0].channels[0].period: must be > 0"},
		{"negative period", "period: 100ms}\n  - name: psu-02", "period: -1s}\n  - name: psu-02", `devices[0].channels[0].period: must be > 0, got "-1s"`},
		{"duplicate name", "name: psu-02", "name: psu-01", `cfg.yaml:10: devices[1].name: duplicate device name "psu-01"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(okConfig, tc.from, tc.to, 1)
			if bad == okConfig {
				t.Fatal("edit did not apply")
			}
			path := filepath.Join(t.TempDir(), "cfg.yaml")
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"serve", "--config", path}, &stdout, &stderr)
			if code == 0 {
				t.Fatal("serve accepted a bad configuration")
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr:\n%s\nwant it to contain %q", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String(), "serving") {
				t.Fatal("something started despite the bad configuration")
			}
			stdout.Reset()
			stderr.Reset()
			if code := run([]string{"check-config", path}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("check-config: exit %d, stderr %s", code, stderr.String())
			}
		})
	}
	path := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(path, []byte(okConfig), 0o644)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check-config", path}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "ok (2 devices)") {
		t.Fatalf("check-config on a good file: exit %d, %s%s", code, stdout.String(), stderr.String())
	}
}

func TestUnknownVerb(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"frobnicate"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `unknown verb "frobnicate"`) {
		t.Fatalf("exit %d, stderr %s", code, stderr.String())
	}
}
