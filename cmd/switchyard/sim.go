package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/examples"
	"github.com/switchyard/switchyard/sim"
)

// simFlags are the simulator's flags, shared by the sim and demo verbs.
type simFlags struct {
	scpi, lines int
	modbus      int
	balances    int
	thermos     int
	seed        uint64
	pushHz      float64
	basePort    int
	control     string
	examples    bool
	quirky      string // comma-separated personalities: one more supply each
	acks        string // the supply that acknowledges writes (demo fleet)
}

// ExamplesBasePort is where the examples fleet listens: the configurations under
// examples/ address its instruments there.
const examplesBasePort = 17100

// useExamplesLayout switches to the fleet the configurations under examples/
// are written for: psu-01 and psu-02 (SCPI) on ports 17100-17101, env-01
// (key=value lines) 17102, tc-01 (Modbus TCP) 17103, bal-01 (CSV lines) 17104,
// thermo-01 (JSON lines) 17105, and a supply of each personality from 17106
// (acks-01, chatty-01, crlf-01, echo-01, flaky-01, slow-start-01), unless
// --base-port moves them all.
func (s *simFlags) useExamplesLayout() {
	s.scpi, s.lines, s.modbus, s.balances, s.thermos = 2, 1, 1, 1, 1
	s.quirky, s.acks = strings.Join(sim.PersonalityNames(), ","), ""
	if s.basePort == 0 {
		s.basePort = examplesBasePort
	}
}

func (s *simFlags) register(fs *flag.FlagSet, scpi, lines int, acks string) {
	fs.IntVar(&s.scpi, "scpi", scpi, "number of simulated SCPI power supplies (psu-01, ...)")
	fs.IntVar(&s.lines, "lines", lines, "number of simulated line-pushing environment monitors (env-01, ...)")
	fs.IntVar(&s.modbus, "modbus", 0, "number of simulated Modbus TCP temperature controllers (tc-01, ...)")
	fs.IntVar(&s.balances, "balances", 0, "number of simulated CSV-pushing balances (bal-01, ...)")
	fs.IntVar(&s.thermos, "thermometers", 0, "number of simulated JSON-pushing thermometers (thermo-01, ...)")
	fs.BoolVar(&s.examples, "examples", false, "run the fleet the configurations under examples/ are written for (ports 17100-17105), ignoring the counts")
	fs.Uint64Var(&s.seed, "seed", 1, "noise seed of the simulated instruments")
	fs.Float64Var(&s.pushHz, "push-hz", 10, "lines per second pushed by each environment monitor")
	fs.IntVar(&s.basePort, "base-port", 0, "port of the first instrument, the others follow (0: free ports)")
	fs.StringVar(&s.control, "control", "127.0.0.1:7490", "HTTP address of the fault-injection control API (empty: none)")
	fs.StringVar(&s.acks, "acks", acks, "the power supply that acknowledges every write (OK/ERR) and refuses joined messages, model sim-psu-acks (empty: none)")
	fs.StringVar(&s.quirky, "quirky", "", "comma-separated personalities ("+strings.Join(sim.PersonalityNames(), ", ")+"): one more power supply of each, named after it (acks-01, ...)")
}

func (s *simFlags) fleet() (*sim.Fleet, error) {
	if s.examples {
		s.useExamplesLayout()
	}
	spec := sim.FleetSpec{
		SCPI: s.scpi, Lines: s.lines, Modbus: s.modbus, Balances: s.balances, Thermometers: s.thermos,
		Seed: s.seed, PushHz: s.pushHz, BasePort: s.basePort,
	}
	if s.quirky != "" {
		spec.Quirky = strings.Split(s.quirky, ",")
	}
	// The acknowledging supply is one of the fleet's, if it has that many.
	if n, err := strconv.Atoi(strings.TrimPrefix(s.acks, "psu-")); s.acks != "" && err == nil && n >= 1 && n <= s.scpi {
		spec.Personalities = map[string]string{s.acks: "acks"}
	}
	return sim.NewFleet(spec)
}

// cmdSim runs simulated instruments and prints a server configuration for them.
func cmdSim(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var sf simFlags
	sf.register(fs, 20, 4, "")
	out := fs.String("config-out", "", "write a server configuration for the simulated instruments to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fleet, err := sf.fleet()
	if err != nil {
		return err
	}
	cfg := demoConfig(fleet)
	if *out != "" {
		data, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			return err
		}
		log.Info("wrote server configuration", "file", *out)
	}
	for _, in := range fleet.Instruments() {
		fmt.Fprintf(stdout, "%-9s %-11s %s\n", in.Name(), in.Kind(), in.Addr())
	}
	return runFleet(ctx, fleet, sf.control, log)
}

// runFleet serves the fleet, and its control API when control is not empty,
// until ctx ends or either fails; then it stops both and waits for them.
func runFleet(ctx context.Context, fleet *sim.Fleet, control string, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var srv *http.Server
	ctlErr := make(chan error, 1)
	if control != "" {
		ln, err := net.Listen("tcp", control)
		if err != nil {
			fleet.Close()
			return fmt.Errorf("sim control API: %w", err)
		}
		srv = &http.Server{Handler: fleet.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			ctlErr <- ignoreClosed(srv.Serve(ln))
			cancel() // a failed control API stops the simulator too
		}()
		log.Info("simulator control API", "url", "http://"+ln.Addr().String()+"/instruments")
	} else {
		ctlErr <- nil
	}
	err := fleet.Serve(ctx)
	if srv != nil {
		shut, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = srv.Shutdown(shut)
	}
	return errors.Join(err, <-ctlErr)
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// simModels are the device models of the simulator's instruments, from the
// model library examples/models (embedded; TestSimModels checks that it
// loads and covers every instrument).
var simModels = sync.OnceValues(func() (map[string]config.Model, error) {
	return config.ModelsFS(examples.Models, examples.ModelFiles...)
})

// demoConfig describes every instrument of a fleet the way a user would in
// YAML: devices that name the model of their instrument (see
// sim.Instrument.ModelName) and carry tags. The models are embedded data, so
// one that does not load is a bug of this program: it panics.
func demoConfig(fleet *sim.Fleet) *config.Config {
	models, err := simModels()
	if err != nil {
		panic(fmt.Sprintf("the simulator's models (examples/models): %v", err))
	}
	c := &config.Config{Models: map[string]config.Model{}}
	for _, in := range fleet.Instruments() {
		m, ok := models[in.ModelName()]
		if !ok {
			panic(fmt.Sprintf("%s: no model %s in examples/models", in.Name(), in.ModelName()))
		}
		c.Models[in.ModelName()] = m
		c.Devices = append(c.Devices, config.Device{
			Name: in.Name(), Address: in.Addr(), Model: in.ModelName(),
			Tags: map[string]string{"area": "demo", "kind": string(in.Kind())},
		})
	}
	c.Alarms = demoAlarms(driftDevice(fleet))
	return c
}

// driftDevice names the power supply whose set-point the demo sweeps: the last
// tidy one, so the first ones keep their 12 V for whoever watches them. Empty
// when the fleet has none.
func driftDevice(fleet *sim.Fleet) string {
	name := ""
	for _, in := range fleet.Instruments() {
		if _, p := in.Personality(); in.Kind() == sim.KindSCPI && p == "" {
			name = in.Name()
		}
	}
	return name
}

// demoSweep is how the demo turns the drifting supply's set-point (by the
// simulator itself, sim.Sweep): 1 to 19 V and back every 80 s, a step every 2 s,
// through every limit of demoAlarms, so that its alarms fire and clear.
var demoSweep = sim.Sweep{Min: 1, Max: 19, Period: 80 * time.Second, Step: 2 * time.Second}

// demoAlarms are the demo's alarm limits. The drifting supply's set-point is swept
// by the demo (demoSweep) through every limit; the other supplies sit at
// 12 V inside theirs and raise INVALID only when they fail.
func demoAlarms(drifting string) []config.Alarm {
	f := func(v float64) *float64 { return &v }
	var out []config.Alarm
	if drifting != "" {
		out = append(out, config.Alarm{Device: drifting, Channel: "voltage", Group: "power",
			HiHi: f(17), High: f(15), Low: f(4), LoLo: f(2), Hysteresis: 0.2, Delay: config.Duration(time.Second)})
	}
	return append(out,
		config.Alarm{Device: "psu-*", Channel: "voltage", Group: "power", HiHi: f(20), High: f(15), Low: f(4), LoLo: f(2), Hysteresis: 0.2},
		config.Alarm{Device: "env-*", Channel: "pressure", Group: "vacuum", StaleAfter: config.Duration(5 * time.Second)},
	)
}
