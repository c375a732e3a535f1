package config_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/config"
)

// layoutBase archives the model psu wide and the rest narrow.
const layoutBase = `questdb:
  address: 127.0.0.1:9000
models:
  psu:
    driver: scpi
    archive_layout: wide
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms}
      - {name: output, query: "OUTP?", period: 100ms, type: bool}
devices:
  - {name: psu-01, model: psu, address: 127.0.0.1:5025}
  - {name: psu-02, model: psu, address: 127.0.0.1:5026, archive_layout: narrow}
  - name: env-01
    driver: lines
    address: 127.0.0.1:5030
    channels:
      - {name: temp.in, key: t}
`

func TestArchiveLayouts(t *testing.T) {
	c, err := config.Parse("lab.yaml", []byte(layoutBase))
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(c.WideDevices())); !slices.Equal(got, []string{"psu-01"}) {
		t.Errorf("wide devices %v, want [psu-01] (psu-02 overrides its model, env-01 has the default)", got)
	}
	c, err = config.Parse("lab.yaml", []byte(strings.Replace(layoutBase, "  address: 127.0.0.1:9000\n", "  address: 127.0.0.1:9000\n  layout: wide\n", 1)+
		"      - {name: temp_out, key: o}\n"))
	if err == nil || !strings.Contains(err.Error(), `lab.yaml:18: devices[2].channels[0].name: device env-01 is archived in the wide layout: "temp.in" cannot be a column`) {
		t.Fatalf("questdb.layout wide with a channel named temp.in: %v", err)
	}
	_ = c
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"an unknown layout", "archive_layout: wide", "archive_layout: tall",
			`6: models.psu.archive_layout: want narrow or wide, got "tall"`},
		{"an unknown layout of a device", "archive_layout: narrow}", "archive_layout: square}",
			`12: devices[1].archive_layout: want narrow or wide, got "square"`},
		{"a channel named as a column of the table", "name: output,", "name: Quality,",
			`9: models.psu.channels[1].name: device psu-01 is archived in the wide layout: "Quality" is a column of the wide archive layout itself`},
		{"a channel name QuestDB refuses as a column", "name: voltage,", "name: volt-dc,",
			`8: models.psu.channels[0].name: device psu-01 is archived in the wide layout: "volt-dc" cannot be a column`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(layoutBase, tc.from, tc.to, 1)
			if text == layoutBase {
				t.Fatalf("%q is not in the base", tc.from)
			}
			_, err := config.Parse("lab.yaml", []byte(text))
			if err == nil {
				t.Fatal("accepted")
			}
			if first, _, _ := strings.Cut(err.Error(), "\n"); !strings.HasPrefix(first, "lab.yaml:"+tc.want) {
				t.Errorf("error:\n%v\nwant a first line starting lab.yaml:%s", err, tc.want)
			}
		})
	}
}

// TestWideColumnsAgree: two wide devices may share a channel name only with
// one type and one spelling, since it is one column of the wide table.
func TestWideColumnsAgree(t *testing.T) {
	two := layoutBase + `  - name: psu-03
    driver: scpi
    address: 127.0.0.1:5027
    archive_layout: wide
    channels:
      - {name: VOLTAGE, query: "MEAS:VOLT?", period: 100ms}
`
	_, err := config.Parse("lab.yaml", []byte(two))
	if err == nil || !strings.Contains(err.Error(), `lab.yaml:23: devices[3].channels[0].name: the wide archive layout compares column names without case: "VOLTAGE" here and "voltage" on device psu-01`) {
		t.Errorf("VOLTAGE beside voltage: %v", err)
	}
	_, err = config.Parse("lab.yaml", []byte(strings.Replace(two, "{name: VOLTAGE,", "{name: voltage, type: int,", 1)))
	if err == nil || !strings.Contains(err.Error(), `lab.yaml:23: devices[3].channels[0].name: the wide archive layout keeps channel "voltage" in one column for every device, and it is of type int here but float on device psu-01`) {
		t.Errorf("voltage as an int beside a float: %v", err)
	}
	if _, err := config.Parse("lab.yaml", []byte(strings.Replace(two, "{name: VOLTAGE,", "{name: voltage,", 1))); err != nil {
		t.Errorf("the same channel on two wide devices: %v", err)
	}
}
