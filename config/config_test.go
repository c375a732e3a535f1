package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

const good = `
listen:
  grpc: 127.0.0.1:7400
questdb:
  address: 127.0.0.1:9000
devices:
  - name: psu-01
    address: 127.0.0.1:5025
    driver: scpi
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}
      - {name: current, query: "MEAS:CURR?", period: 100ms, unit: A}
    commands:
      - name: set_voltage
        template: "SOUR:VOLT {volts}"
        args: [{name: volts, type: float, min: 0, max: 60}]
  - name: env-01
    address: 127.0.0.1:6000
    driver: lines
    channels:
      - {name: temp}
`

func TestParseGood(t *testing.T) {
	c, err := config.Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	specs := c.Specs()
	if len(specs) != 2 || specs[0].Channels[0].Period != 100*time.Millisecond || !specs[0].Commands[0].Args[0].HasMax {
		t.Fatalf("specs = %+v", specs)
	}
	if c.Listen.HTTP != "127.0.0.1:7480" || c.QuestDB.Table != "samples" {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestParseRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, edit, want string
	}{
		{"unknown key", "    driver: scpi\n", "    driver: scpi\n    colour: blue\n"},
		{"missing address", "    address: 127.0.0.1:5025\n", ""},
		{"period zero", "period: 100ms, unit: V", "period: 0s, unit: V"},
		{"negative period", "period: 100ms, unit: V", "period: -5s, unit: V"},
		{"bad duration", "period: 100ms, unit: V", "period: soon, unit: V"},
		{"duplicate name", "name: env-01", "name: psu-01"},
		{"wrong type", "min: 0,", "min: zero,"},
		{"bad driver", "driver: lines", "driver: modbus"},
	}
	wants := map[string]string{
		"unknown key":     "good.yaml:10: field colour not found",
		"missing address": "good.yaml:7: devices[0].address: required",
		"period zero":     "good.yaml:11: devices[0].channels[0].period: must be > 0",
		"negative period": `devices[0].channels[0].period: must be > 0, got "-5s"`,
		"bad duration":    `good.yaml:11: want a duration such as "250ms", got "soon"`,
		"duplicate name":  `good.yaml:17: devices[1].name: duplicate device name "psu-01"`,
		"wrong type":      "good.yaml:16: cannot unmarshal !!str `zero` into float64",
		"bad driver":      `good.yaml:19: devices[1].driver: must be "scpi" or "lines", got "modbus"`,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(good, tt.edit, tt.want, 1)
			if text == good {
				t.Fatalf("edit %q did not apply", tt.edit)
			}
			_, err := config.Parse("good.yaml", []byte(text))
			if err == nil {
				t.Fatal("bad config accepted")
			}
			if !strings.Contains(err.Error(), wants[tt.name]) {
				t.Fatalf("error %q\nwant it to contain %q", err, wants[tt.name])
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	text := strings.Replace(good, "period: 100ms, unit: A", "period: 0s, unit: A", 1)
	text = strings.Replace(text, "name: env-01", "name: psu-01", 1)
	_, err := config.Parse("x.yaml", []byte(text))
	if err == nil || strings.Count(err.Error(), "\n") != 1 {
		t.Fatalf("want two problems, got %v", err)
	}
}
