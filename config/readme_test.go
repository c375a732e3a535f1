package config_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/examples"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestREADMEWorkedExample: the worked example of the README's "Device models"
// section loads, and its reply formats read the replies the text says the
// instrument gives.
func TestREADMEWorkedExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("README.md", []byte(readmeYAML(t, string(readme), "### Worked example: a two-output bench power supply")))
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

// readmeYAML returns the first YAML block after heading in the README.
func readmeYAML(t *testing.T, text, heading string) string {
	t.Helper()
	i := strings.Index(text, heading)
	if i < 0 {
		t.Fatalf("README has no %q", heading)
	}
	j := strings.Index(text[i:], "```yaml\n")
	if j < 0 {
		t.Fatalf("README: no YAML after %q", heading)
	}
	k := strings.Index(text[i+j+8:], "```")
	return text[i+j+8 : i+j+8+k]
}

// TestREADMEAcknowledgingInstrument: the README's worked example of an
// instrument that acknowledges writes and refuses joined queries is the model
// of the simulator's "acks" supply in examples/models, and it runs against
// that supply: every channel GOOD, set_voltage acknowledged, a refused
// command failing with the instrument's words.
func TestREADMEAcknowledgingInstrument(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse("README.md", []byte(readmeYAML(t, string(readme), "### Worked example: an instrument that acknowledges writes")))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := config.ModelsFS(examples.Models, examples.ModelFiles...)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Models["sim-psu-acks"], lib["sim-psu-acks"]) {
		t.Fatalf("README's sim-psu-acks:\n%+v\nexamples/models' sim-psu-acks:\n%+v", c.Models["sim-psu-acks"], lib["sim-psu-acks"])
	}
	psu := simtest.SCPI(t, "psu-19", sim.Options{Personality: mustPersonality(t, "acks"), PersonalityName: "acks"})
	spec := c.Specs()[0]
	spec.Address = psu.Addr()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "test", Policy: telemetry.Lossless})
	defer sub.Close()
	mgr, err := devicemgr.New([]devicemgr.Spec{spec}, hub, devicemgr.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Devices()[0].Serve(ctx) }()
	defer func() { cancel(); <-done }()
	want := map[string]bool{"voltage": true, "current": true, "setpoint": true, "output": true}
	deadline := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case <-sub.Ready():
			for _, s := range sub.Drain(nil, 0) {
				if s.Quality != telemetry.Good {
					t.Fatalf("%v", s)
				}
				delete(want, s.Channel)
			}
		case <-deadline:
			t.Fatalf("no GOOD sample of %v", want)
		}
	}
	if _, err := mgr.Send(ctx, "psu-19", devicemgr.Command{Name: "set_voltage", Args: []string{"24"}}); err != nil || psu.SetPoint() != 24 {
		t.Fatalf("set_voltage 24: %v, set-point %v", err, psu.SetPoint())
	}
	var ie *devicemgr.InstrumentError
	if _, err := mgr.Send(ctx, "psu-19", devicemgr.Command{Raw: "SOUR:VOLT 99"}); !errors.As(err, &ie) || ie.Message != "data out of range" {
		t.Fatalf("SOUR:VOLT 99: %v, want the instrument's error", err)
	}
}

func mustPersonality(t *testing.T, name string) sim.Personality {
	t.Helper()
	p, err := sim.LookupPersonality(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
