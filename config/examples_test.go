package config_test

import (
	"context"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// examplesBasePort is where the examples fleet of `switchyard demo --config`
// listens; the test runs the same fleet on free ports and maps the addresses.
const examplesBasePort = 17100

// TestExamplesRunAgainstTheSimulator: every configuration under examples/ loads,
// and every channel of every device it describes publishes a GOOD sample from
// the simulated instruments.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestExamplesRunAgainstTheSimulator(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := config.Load(file)
			if err != nil {
				t.Fatal(err)
			}
			fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 2, Lines: 1, Modbus: 1, Balances: 1, Thermometers: 1, PushHz: 20,
				Quirky: sim.PersonalityNames()})
			insts := fleet.Instruments()
			specs := c.Specs()
			want := map[string]bool{}
			for i := range specs {
				_, port, _ := net.SplitHostPort(specs[i].Address)
				p, _ := strconv.Atoi(port)
				if p-examplesBasePort < 0 || p-examplesBasePort >= len(insts) {
					t.Fatalf("%s: address %s is not in the examples fleet", specs[i].Name, specs[i].Address)
				}
				in := insts[p-examplesBasePort]
				if in.Name() != specs[i].Name {
					t.Fatalf("%s: port %d is %s in the examples fleet", specs[i].Name, p, in.Name())
				}
				if specs[i].Model != in.ModelName() {
					t.Fatalf("%s: model %s, but the simulator's instrument is described by %s", specs[i].Name, specs[i].Model, in.ModelName())
				}
				specs[i].Address = in.Addr()
				specs[i].BackoffMin, specs[i].BackoffMax = 20*time.Millisecond, max(100*time.Millisecond, specs[i].BackoffMin)
				for _, ch := range specs[i].Channels {
					want[specs[i].Name+"/"+ch.Name] = true
				}
			}
			hub := telemetry.NewHub(nil)
			sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "test", Policy: telemetry.Lossless})
			mgr, err := devicemgr.New(specs, hub, devicemgr.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for _, d := range mgr.Devices() {
				wg.Add(1)
				go func() { defer wg.Done(); _ = d.Serve(ctx) }()
			}
			defer func() { cancel(); wg.Wait(); sub.Close() }()
			deadline := time.After(20 * time.Second)
			for len(want) > 0 {
				select {
				case <-sub.Ready():
					for _, s := range sub.Drain(nil, 0) {
						if s.Quality == telemetry.Good {
							delete(want, s.Device+"/"+s.Channel)
						}
					}
				case <-deadline:
					t.Fatalf("no GOOD sample from %v", slices.Sorted(maps.Keys(want)))
				}
			}
			for _, info := range mgr.List() {
				if info.Driver == devicemgr.DriverSCPI {
					// A flaky instrument may drop the reply to a command:
					// the device reconnects and the command is tried again.
					send := func(cmd devicemgr.Command) devicemgr.Reply {
						t.Helper()
						for try := 0; ; try++ {
							rep, err := mgr.Send(ctx, info.Name, cmd)
							if err == nil {
								return rep
							}
							if try == 20 || !strings.HasPrefix(info.Name, "flaky") {
								t.Fatalf("%s %s: %v", info.Name, cmd, err)
							}
							time.Sleep(50 * time.Millisecond)
						}
					}
					send(devicemgr.Command{Name: "set_voltage", Args: []string{"13.5"}})
					if sp := fleet.Instrument(info.Name).SetPoint(); sp != 13.5 {
						t.Fatalf("%s: set-point %v after set_voltage 13.5", info.Name, sp)
					}
					rep := send(devicemgr.Command{Name: "identify"})
					if !strings.HasPrefix(rep.Text, "Switchyard,SIM-PSU,"+sim.Serial(info.Name)) {
						t.Fatalf("%s identify: %+v", info.Name, rep)
					}
				}
				if info.Driver == devicemgr.DriverModbus {
					if _, err := mgr.Send(ctx, info.Name, devicemgr.Command{Name: "set_temperature", Args: []string{"30"}}); err != nil {
						t.Fatalf("%s set_temperature with read-back: %v", info.Name, err)
					}
					if sp := fleet.Instrument(info.Name).TemperatureSetPoint(); sp != 30 {
						t.Fatalf("%s: set-point %v after set_temperature 30 (the register must get (30 - offset) / scale)", info.Name, sp)
					}
				}
				if len(info.Tags) == 0 {
					t.Errorf("%s has no tags", info.Name)
				}
			}
		})
	}
}
