package config_test

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/switchyard/switchyard/config"
)

const plant = `
listen: {grpc: "127.0.0.1:7400"}
models:
  psu:
    driver: scpi
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V}
devices:
  - {name: a, address: "127.0.0.1:5001", model: psu}
  - {name: b, address: "127.0.0.1:5002", model: psu, tags: {area: x}}
  - {name: c, address: "127.0.0.1:5003", model: psu}
  - {name: d, address: "127.0.0.1:5004", model: psu}
  - {name: e, address: "127.0.0.1:5005", model: psu}
  - name: f
    address: "127.0.0.1:5006"
    model: psu
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 100ms, unit: V, archive_deadband: 0.1}
  - {name: g, address: "127.0.0.1:5007", model: psu}
alarms:
  - {device: "e", channel: voltage, high: 10}
  - {device: "*", channel: voltage, high: 20}
`

func parsePlant(t *testing.T, edits ...string) *config.Config {
	t.Helper()
	text := plant
	for i := 0; i < len(edits); i += 2 {
		if !strings.Contains(text, edits[i]) {
			t.Fatalf("edit %q: not in the text", edits[i])
		}
		text = strings.Replace(text, edits[i], edits[i+1], 1)
	}
	c, err := config.Parse("plant.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCompareConfigurations(t *testing.T) {
	old := parsePlant(t)
	next := parsePlant(t,
		`listen: {grpc: "127.0.0.1:7400"}`, `listen: {grpc: "127.0.0.1:7401"}`+"\nwatch: true",
		`  - {name: a, address: "127.0.0.1:5001", model: psu}`+"\n", "", // a removed
		`{area: x}`, `{area: y}`, // b retagged
		`{name: c, address: "127.0.0.1:5003", model: psu}`, `{name: c, address: "127.0.0.1:5013", model: psu}`, // c moved
		`{device: "e", channel: voltage, high: 10}`, `{device: "e", channel: voltage, high: 11}`, // e's limit
		`archive_deadband: 0.1`, `archive_deadband: 0.2`, // f's filter
		`  - {name: g,`, `  - {name: h, address: "127.0.0.1:5008", model: psu}`+"\n  - {name: g,", // h added
	)
	d := old.Compare(next)
	want := config.Diff{
		Added: []string{"h"}, Removed: []string{"a"}, Restarted: []string{"c"},
		Updated: []config.DeviceUpdate{
			{Name: "b", What: []string{"tags"}},
			{Name: "e", What: []string{"alarm limits"}},
			{Name: "f", What: []string{"archive filter"}},
		},
		Unchanged: 2, Alarms: true, ArchiveFilter: true,
		NeedsRestart: []string{`listen.grpc: "127.0.0.1:7400" -> "127.0.0.1:7401"`},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Compare =\n%+v\nwant\n%+v", d, want)
	}
	if got, wantS := d.Summary(), "1 added, 1 removed, 1 restarted, 3 updated in place (alarm limits, archive filter, tags), 2 unchanged; alarm rules replaced; archive filters replaced; needs a restart: listen.grpc"; got != wantS {
		t.Errorf("Summary = %q\nwant      %q", got, wantS)
	}
	if same := old.Compare(parsePlant(t)); !same.Empty() || same.Unchanged != 7 {
		t.Errorf("Compare with itself = %+v", same)
	}

	// What a reloaded server runs with: the new devices, the old ports.
	next.KeepRestartOnly(old)
	if next.Listen.GRPC != "127.0.0.1:7400" || len(next.Devices) != 7 || !next.Watch {
		t.Errorf("after KeepRestartOnly: listen %+v, %d devices, watch %v", next.Listen, len(next.Devices), next.Watch)
	}
	if d := old.Compare(next); len(d.NeedsRestart) != 0 {
		t.Errorf("NeedsRestart after KeepRestartOnly: %v", d.NeedsRestart)
	}
}

func TestCompareAlarmRulesThatSelectOtherChannels(t *testing.T) {
	old := parsePlant(t)
	// A new first rule for d only; the others keep theirs, though the list
	// changed.
	next := parsePlant(t, `  - {device: "e",`, `  - {device: "d", channel: voltage, high: 5}`+"\n  - {device: \"e\",")
	d := old.Compare(next)
	if !d.Alarms || len(d.Updated) != 1 || d.Updated[0].Name != "d" || d.Unchanged != 6 {
		t.Fatalf("Compare = %+v", d)
	}
}

func TestHashCoversIncludedFiles(t *testing.T) {
	a, err := config.Parse("plant.yaml", []byte(plant))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := config.Parse("plant.yaml", []byte(plant+"\n# a comment\n"))
	if len(a.Hash) != 64 || a.Hash == b.Hash {
		t.Fatalf("hashes %q and %q", a.Hash, b.Hash)
	}
	again, _ := config.Parse("other-name.yaml", []byte(plant))
	if again.Hash != a.Hash {
		t.Fatal("the same text gives another hash")
	}
	main := "include: [lib.yaml]\ndevices:\n  - {name: a, address: \"127.0.0.1:5001\", model: psu}\n"
	lib := "models:\n  psu:\n    driver: scpi\n    channels:\n      - {name: voltage, query: \"MEAS:VOLT?\", period: 100ms}\n"
	x, err := config.ParseFS(fstest.MapFS{"plant.yaml": {Data: []byte(main)}, "lib.yaml": {Data: []byte(lib)}}, "plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y, err := config.ParseFS(fstest.MapFS{"plant.yaml": {Data: []byte(main)}, "lib.yaml": {Data: []byte(lib + "# edited\n")}}, "plant.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if x.Hash == y.Hash || !reflect.DeepEqual(x.Files, []string{"plant.yaml", "lib.yaml"}) {
		t.Fatalf("an edited include: hashes %q, %q; files %v", x.Hash, y.Hash, x.Files)
	}
}

// TestCompareArchiveLayouts: a device whose archive layout changes, and a
// device added in the wide layout, need a restart (the server settles its wide
// devices at start); a device added narrow does not.
func TestCompareArchiveLayouts(t *testing.T) {
	old := parsePlant(t, `{name: a, address: "127.0.0.1:5001", model: psu}`, `{name: a, address: "127.0.0.1:5001", model: psu, archive_layout: wide}`)
	next := parsePlant(t,
		`{name: d, address: "127.0.0.1:5004", model: psu}`, `{name: d, address: "127.0.0.1:5004", model: psu, archive_layout: wide}`,
		`  - {name: g, address: "127.0.0.1:5007", model: psu}`,
		`  - {name: g, address: "127.0.0.1:5007", model: psu}
  - {name: h, address: "127.0.0.1:5008", model: psu, archive_layout: wide}
  - {name: i, address: "127.0.0.1:5009", model: psu}`)
	d := old.Compare(next)
	want := []string{
		"devices.a.archive_layout: wide -> narrow",
		"devices.d.archive_layout: narrow -> wide",
		"devices.h.archive_layout: narrow -> wide",
	}
	if !reflect.DeepEqual(d.NeedsRestart, want) {
		t.Errorf("NeedsRestart = %q, want %q", d.NeedsRestart, want)
	}
	if !strings.Contains(d.Summary(), "needs a restart: devices.a.archive_layout, devices.d.archive_layout, devices.h.archive_layout") {
		t.Errorf("summary %q does not name the layouts that need a restart", d.Summary())
	}
}
