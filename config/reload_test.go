package config_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

// reloadRig is a Reloader of a temporary file whose applier and record
// hooks report to the test.
type reloadRig struct {
	t       *testing.T
	path    string
	r       *config.Reloader
	applied chan *config.Config
	records chan config.Reload
	signals chan os.Signal
}

func newReloadRig(t *testing.T, text string) *reloadRig {
	t.Helper()
	rr := &reloadRig{t: t, path: filepath.Join(t.TempDir(), "plant.yaml"),
		applied: make(chan *config.Config, 16), records: make(chan config.Reload, 16), signals: make(chan os.Signal, 1)}
	rr.write(text)
	c, err := config.Load(rr.path)
	if err != nil {
		t.Fatal(err)
	}
	rr.r = config.NewReloader(rr.path, c, func(running, next *config.Config, r *config.Reload) error {
		rr.applied <- next
		return nil
	}, config.ReloaderOptions{
		Record:        func(r config.Reload) { rr.records <- r },
		Signals:       rr.signals,
		WatchInterval: 10 * time.Millisecond,
	})
	return rr
}

func (rr *reloadRig) write(text string) {
	rr.t.Helper()
	// Written aside and renamed, as editors do, so the watch never sees half a file.
	tmp := rr.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		rr.t.Fatal(err)
	}
	if err := os.Rename(tmp, rr.path); err != nil {
		rr.t.Fatal(err)
	}
}

func (rr *reloadRig) serve() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rr.r.Serve(ctx) }()
	rr.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			rr.t.Errorf("Serve: %v", err)
		}
	})
}

func (rr *reloadRig) record() config.Reload {
	rr.t.Helper()
	select {
	case r := <-rr.records:
		return r
	case <-time.After(15 * time.Second):
		rr.t.Fatal("no reload recorded")
		return config.Reload{}
	}
}

func TestReloadRefusesAnInvalidConfigurationAndChangesNothing(t *testing.T) {
	rr := newReloadRig(t, plant)
	before := rr.r.Active()
	bad := strings.NewReplacer(
		"period: 100ms", "period: 0s",
		`{name: d, address: "127.0.0.1:5004", model: psu}`, `{name: d, address: "127.0.0.1:5004", model: nosuch}`,
		"high: 20", "high: twenty",
	).Replace(plant)
	rr.write(bad)
	rec, err := rr.r.Reload(config.TriggerAPI, "alice", false)
	var inv *config.InvalidError
	if !errors.As(err, &inv) || !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("Reload: %v, want an *InvalidError", err)
	}
	want := []string{
		":7: models.psu.channels[0].period: must be > 0",
		":12: devices[3].model: unknown model \"nosuch\"",
		":18: devices[5].channels[0].period: must be > 0",
		":22: alarms[1].high: want a number",
	}
	if len(inv.Problems) != len(want) {
		t.Fatalf("problems:\n%s", strings.Join(inv.Problems, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(inv.Problems[i], rr.path+w) {
			t.Errorf("problem %d = %q, want %q...", i, inv.Problems[i], rr.path+w)
		}
	}
	if !strings.Contains(err.Error(), strings.Join(inv.Problems, "\n")) {
		t.Errorf("the error does not hold every problem: %v", err)
	}
	select {
	case c := <-rr.applied:
		t.Fatalf("an invalid configuration was applied: %d devices", len(c.Devices))
	default:
	}
	if after := rr.r.Active(); after.Config != before.Config || after.LoadedAt != before.LoadedAt {
		t.Fatal("the active configuration changed")
	}
	if got := rr.record(); got.Applied || len(got.Errors) != 4 || got.By != "alice" || rec.Summary() != "refused: 4 problems, nothing changed" {
		t.Fatalf("recorded %+v; summary %q", got, rec.Summary())
	}
}

func TestReloadAppliesTheDiffAndKeepsRestartOnlySettings(t *testing.T) {
	rr := newReloadRig(t, plant)
	old := rr.r.Active().Config
	rr.write(strings.Replace(plant, `grpc: "127.0.0.1:7400"`, `grpc: "127.0.0.1:7401"`, 1) + "  - {device: g, channel: voltage, high: 3}\n")
	dry, err := rr.r.Reload(config.TriggerAPI, "alice", true)
	if err != nil || !dry.DryRun || dry.Applied || len(dry.Diff.Updated) != 0 || !dry.Diff.Alarms {
		t.Fatalf("dry run: %+v, %v", dry, err)
	}
	select {
	case <-rr.applied:
		t.Fatal("a dry run applied the configuration")
	default:
	}
	rec, err := rr.r.Reload(config.TriggerAPI, "alice", false)
	if err != nil || !rec.Applied || rec.PreviousHash != old.Hash || rec.Hash == old.Hash {
		t.Fatalf("Reload: %+v, %v", rec, err)
	}
	next := <-rr.applied
	if next.Listen.GRPC != "127.0.0.1:7400" || len(next.Alarms) != 3 {
		t.Fatalf("applied: listen %+v, %d alarms", next.Listen, len(next.Alarms))
	}
	act := rr.r.Active()
	if act.Config != next || act.By != "alice" || act.Trigger != config.TriggerAPI || len(act.NeedsRestart) != 1 || act.Last == nil || act.Last.Hash != rec.Hash {
		t.Fatalf("active: %+v", act)
	}
	if got := rr.record(); !got.Applied || got.Hash != rec.Hash {
		t.Fatalf("recorded %+v", got)
	}
}

func TestServeReloadsOnSIGHUP(t *testing.T) {
	rr := newReloadRig(t, plant)
	rr.serve()
	rr.write(plant + "  - {device: g, channel: voltage, high: 3}\n")
	rr.signals <- syscall.SIGHUP
	if got := rr.record(); !got.Applied || got.Trigger != config.TriggerSignal || got.By != "SIGHUP" || !got.Diff.Alarms {
		t.Fatalf("recorded %+v", got)
	}
}

// TestServeWatchesTheFile edits a file with watch: true: a change reloads,
// a touch (same text) does not, an invalid file is refused once and not
// retried until it changes, and once watch is turned off nothing reloads.
func TestServeWatchesTheFile(t *testing.T) {
	text := "watch: true\n" + plant
	rr := newReloadRig(t, text)
	rr.serve()

	text += "  - {device: g, channel: voltage, high: 3}\n"
	rr.write(text)
	if got := rr.record(); !got.Applied || got.Trigger != config.TriggerWatch || got.By != "file change" {
		t.Fatalf("recorded %+v", got)
	}
	now := time.Now().Add(time.Second)
	if err := os.Chtimes(rr.path, now, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // ten looks: a touch that reloaded would be recorded next
	rr.write(strings.Replace(text, "high: 3", "high: three", 1))
	if got := rr.record(); got.Applied || len(got.Errors) != 1 {
		t.Fatalf("recorded %+v, want the touch ignored and the bad file refused", got)
	}
	rr.write(strings.Replace(text, "high: 3", "high: 4", 1))
	if got := rr.record(); !got.Applied || !got.Diff.Alarms {
		t.Fatalf("recorded %+v", got)
	}
	rr.write(strings.Replace(strings.Replace(text, "high: 3", "high: 5", 1), "watch: true", "watch: false", 1))
	if got := rr.record(); !got.Applied {
		t.Fatalf("recorded %+v", got)
	}
	rr.write(strings.Replace(strings.Replace(text, "high: 3", "high: 6", 1), "watch: true", "watch: false", 1))
	time.Sleep(100 * time.Millisecond) // ten looks: a watch still on would reload
	rr.signals <- syscall.SIGHUP
	if got := rr.record(); got.Trigger != config.TriggerSignal {
		t.Fatalf("recorded %+v, want no reload from the watch once it is off", got)
	}
}
