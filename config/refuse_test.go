package config_test

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/config"
)

// base is a good configuration that the table below breaks one way at a time.
const base = `models:
  psu:
    driver: scpi
    reply_timeout: 1s
    connect_timeout: 2s
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}
    commands:
      - name: set_voltage
        template: "SOUR:VOLT {volts}"
        args: [{name: volts, min: 0, max: 60}]
      - name: label
        template: "DISP:TEXT {text}"
        args: [{name: text, type: string}]
devices:
  - name: psu-01
    model: psu
    address: 127.0.0.1:5025
    tags: {area: lab}
  - name: tc-01
    driver: modbus
    address: 127.0.0.1:5020
    channels:
      - {name: temp, register: input, addr: 0, data_type: float32, period: 200ms, scale: 1, offset: 0}
      - {name: setpoint, register: holding, addr: 10, period: 1s, scale: 0.1}
    commands:
      - {name: set_temperature, channel: setpoint, args: [{name: degC, min: 0, max: 200}]}
alarms:
  - {device: psu-01, channel: voltage, high: 40}
`

// TestCheckConfigRefusesEveryMistakeOfIssue12 is the table of the mistakes
// check-config once let through (issue 12, point 9), each refused with the
// file, the line, the field path and words a control engineer reads: never a
// Go type name or a YAML tag.
func TestCheckConfigRefusesEveryMistakeOfIssue12(t *testing.T) {
	if _, err := config.Parse("lab.yaml", []byte(base)); err != nil {
		t.Fatalf("the base configuration is refused: %v", err)
	}
	for _, tc := range []struct {
		name, from, to string
		want           string // the whole first line of the error, after "lab.yaml:"
	}{
		{"a period of 1ns", "period: 100ms", "period: 1ns",
			`7: models.psu.channels[0].period: at least 10ms (every poll is a round trip to the instrument), got 1ns`},
		{"a reply timeout of 100 years", "reply_timeout: 1s", "reply_timeout: 876000h",
			`4: models.psu.reply_timeout: at most 1h0m0s, got 876000h0m0s`},
		{"a connect timeout of 0s", "connect_timeout: 2s", "connect_timeout: 0s",
			`5: models.psu.connect_timeout: must be more than 0 (leave the key out for the default)`},
		{"NaN as a minimum", "min: 0, max: 60", "min: .nan, max: 60",
			`11: models.psu.commands[0].args[0].min: must be a number, got NaN`},
		{"Inf as a maximum", "min: 0, max: 60", "min: 0, max: .inf",
			`11: models.psu.commands[0].args[0].max: must be a number, got +Inf`},
		{"NaN as a scale", "scale: 0.1", "scale: .nan",
			`25: devices[1].channels[1].scale: must be a number, got NaN`},
		{"Inf as an offset", "scale: 1, offset: 0", "scale: 1, offset: -.inf",
			`24: devices[1].channels[0].offset: must be a number, got -Inf`},
		{"port 99999", "127.0.0.1:5025", "127.0.0.1:99999",
			`18: devices[0].address: the port must be a number from 1 to 65535, got "99999"`},
		{"NUL in a device name", "name: psu-01", "name: \"psu\\0-01\"",
			"16: devices[0].name: \"psu\\x00-01\": use letters, digits, '.', '_', ':' and '-' only, starting with a letter or digit"},
		{"a right-to-left override in a channel name", "name: voltage", "name: \"volt\\u202Eage\"",
			"7: models.psu.channels[0].name: \"volt\\u202eage\": use letters, digits, '.', '_', ':' and '-' only, starting with a letter or digit"},
		{"a line break inside a query", `query: "MEAS:VOLT?"`, `query: "MEAS:VOLT?\nOUTP OFF"`,
			`7: models.psu.channels[0].query: character U+000A at byte 10 is not printable`},
		{"an empty tag key", "tags: {area: lab}", `tags: {"": lab}`,
			`19: devices[0].tags: a tag needs a name (an empty key has the value "lab")`},
		{"a device name with a slash", "name: psu-01", "name: lab/psu-01",
			`16: devices[0].name: "lab/psu-01": use letters, digits, '.', '_', ':' and '-' only, starting with a letter or digit`},
		{"a device name with a space", "name: psu-01", `name: "psu 01"`,
			`16: devices[0].name: "psu 01": use letters, digits, '.', '_', ':' and '-' only, starting with a letter or digit`},
		{"a Modbus command writing an input register", "channel: setpoint,", "channel: temp,",
			`27: devices[1].commands[0].channel: channel temp is a read-only input register: a command can write holding registers and coils only`},
		{"a query on a Modbus channel", "{name: temp, register: input,", `{name: temp, query: "TEMP?", register: input,`,
			`24: devices[1].channels[0].query: not used by the modbus driver`},
		{"an alarm rule for a device that does not exist", "{device: psu-01, channel: voltage", "{device: psu-99, channel: voltage",
			`29: alarms[0].device: there is no device "psu-99"`},
		{"an alarm rule for a channel that does not exist", "{device: psu-01, channel: voltage", "{device: psu-01, channel: volts",
			`29: alarms[0].channel: no device "psu-01" selects has a channel "volts"`},
		{"a misspelt key", "period: 100ms", "perod: 100ms",
			`7: models.psu.channels[0]: unknown key "perod" (did you mean period?)`},
		{"a register address past 65535", "addr: 10,", "addr: 70000,",
			`25: devices[1].channels[1].addr: want a whole number from 0 to 65535, got 70000`},
		{"a duration without a unit", "period: 100ms", "period: 5",
			`7: models.psu.channels[0].period: want a duration such as 250ms, 2s or 1m, got "5" (a number needs a unit: 5s or 5ms)`},
		{"a NaN argument bound in a string", "min: 0, max: 60", "min: zero, max: 60",
			`11: models.psu.commands[0].args[0].min: want a number, got "zero"`},
		{"a control byte in an init line", "    reply_timeout: 1s\n", "    reply_timeout: 1s\n    init: [\"*CLS\\e\"]\n",
			`5: models.psu.init[0]: character U+001B at byte 4 is not printable`},
		{"a bad pattern", "{name: text, type: string}", `{name: text, type: string, pattern: "[a-"}`,
			"14: models.psu.commands[1].args[0].pattern: bad regular expression: error parsing regexp: missing closing ]: `[a-`"},
		{"join false with max_join", "    reply_timeout: 1s\n", "    reply_timeout: 1s\n    join: false\n    max_join: 4\n",
			`6: models.psu.max_join: max_join 4 with join: false: say join: true, or leave max_join out`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, tc.from, tc.to, 1)
			if text == base {
				t.Fatalf("edit %q did not apply", tc.from)
			}
			_, err := config.Parse("lab.yaml", []byte(text))
			if err == nil {
				t.Fatal("accepted")
			}
			first, _, _ := strings.Cut(err.Error(), "\n")
			if first != "lab.yaml:"+tc.want {
				t.Errorf("got  %s\nwant lab.yaml:%s", err, tc.want)
			}
			for _, goSpeak := range []string{"config.", "!!", "uint16", "float64", "unmarshal", "type "} {
				if strings.Contains(err.Error(), goSpeak) {
					t.Errorf("the error speaks Go (%q): %v", goSpeak, err)
				}
			}
		})
	}
}

// TestCheckConfigWarnsOfSuspiciousModels: legal but suspicious settings are
// warnings with their place, not errors.
func TestCheckConfigWarnsOfSuspiciousModels(t *testing.T) {
	text := strings.Replace(base, "    reply_timeout: 1s\n", "    reply_timeout: 1s\n    write_confirm: \"-\"\n", 1)
	text = strings.Replace(text, `{name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}`,
		`{name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}
      - {name: model, query: "*IDN?", period: 10s, type: string}`, 1)
	text = strings.Replace(text, "  - {device: psu-01, channel: voltage, high: 40}",
		"  - {device: psu-01, channel: voltage, high: 40}\n  - {device: \"env-*\", channel: temp, high: 30}", 1)
	c, err := config.Parse("lab.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`lab.yaml:5: models.psu.write_confirm: writes are sent unconfirmed and no write_ack is declared`,
		`lab.yaml:9: models.psu.channels[1].reply: a string channel without a reply format takes any line as its value`,
		`lab.yaml:32: alarms[1].device: "env-*" selects no device`,
	}
	if len(c.Warnings) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(c.Warnings[i], w) {
			t.Errorf("warning %d = %q\nwant it to start %q", i, c.Warnings[i], w)
		}
	}
}
