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
		{"bad driver", "driver: lines", "driver: serial"},
	}
	wants := map[string]string{
		"unknown key":     `good.yaml:10: devices[0]: unknown key "colour"`,
		"missing address": "good.yaml:7: devices[0].address: required",
		"period zero":     "good.yaml:11: devices[0].channels[0].period: must be > 0",
		"negative period": `devices[0].channels[0].period: must be > 0, got "-5s"`,
		"bad duration":    `good.yaml:11: devices[0].channels[0].period: want a duration such as 250ms, 2s or 1m, got "soon"`,
		"duplicate name":  `good.yaml:17: devices[1].name: duplicate device name "psu-01"`,
		"wrong type":      `good.yaml:16: devices[0].commands[0].args[0].min: want a number, got "zero"`,
		"bad driver":      `good.yaml:19: devices[1].driver: must be "scpi", "lines" or "modbus", got "serial"`,
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

const withModels = `
models:
  bench-psu:
    driver: scpi
    init: ["*CLS"]
    reply_timeout: 2s
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}
      - {name: both, query: "MEAS:VOLT?;MEAS:CURR?", reply: "%f;%f", index: 1, period: 1s}
    commands:
      - {name: set_voltage, template: "SOUR:VOLT {volts}", role: operator, readback: voltage, tolerance: 0.05, args: [{name: volts, min: 0, max: 60}]}
devices:
  - name: psu-01
    model: bench-psu
    address: 127.0.0.1:5025
    tags: {area: vacuum}
  - name: psu-02
    model: bench-psu
    address: 127.0.0.1:5026
    reply_timeout: 3s
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 250ms, unit: V}
      - {name: output, query: "OUTP?", period: 1s, type: bool}
`

func TestModelsAreAppliedAndOverridden(t *testing.T) {
	c, err := config.Parse("m.yaml", []byte(withModels))
	if err != nil {
		t.Fatal(err)
	}
	specs := c.Specs()
	a, b := specs[0], specs[1]
	if a.Tags["area"] != "vacuum" || a.ReplyTimeout != 2*time.Second || len(a.Channels) != 2 || a.Commands[0].Role != "operator" || a.Model != "bench-psu" {
		t.Fatalf("psu-01 = %+v", a)
	}
	if b.ReplyTimeout != 3*time.Second || len(b.Channels) != 3 || b.Init[0] != "*CLS" {
		t.Fatalf("psu-02 = %+v", b)
	}
	for _, ch := range b.Channels {
		if ch.Name == "voltage" && ch.Period != 250*time.Millisecond {
			t.Fatalf("device channel did not replace the model's: %+v", ch)
		}
	}
}

func TestModelProblemsPointAtTheModel(t *testing.T) {
	text := strings.Replace(withModels, `reply: "%f;%f", index: 1`, `reply: "%f;%f", index: 2`, 1)
	_, err := config.Parse("m.yaml", []byte(text))
	// Reported once, at the model's line, although two devices use it.
	if err == nil || err.Error() != `m.yaml:9: models.bench-psu.channels[1].index: must be 0..1 for a format with 2 values, got 2` {
		t.Fatalf("err = %v", err)
	}
}

func TestFiveMistakesGiveFiveErrorsWithLines(t *testing.T) {
	_, err := config.Load("../examples/broken/five-mistakes.yaml")
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		`five-mistakes.yaml:8: models.bench-psu.channels[0].reply: format "%q": unknown conversion`,
		`five-mistakes.yaml:9: models.bench-psu.channels[1].period: want a duration such as 250ms, 2s or 1m, got "fast"`,
		`five-mistakes.yaml:13: models.bench-psu.commands[0].args[0]: min 60 is above max 0`,
		`five-mistakes.yaml:18: devices[0]: unknown key "colour"`,
		`five-mistakes.yaml:20: devices[1].model: unknown model "bench-psu-mk2"`,
	}
	if len(lines) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("error %d = %q, want it to contain %q", i, lines[i], w)
		}
	}
}
