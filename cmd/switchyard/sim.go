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
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/config"
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
}

// ExamplesBasePort is where the examples fleet listens: the configurations under
// examples/ address its instruments there.
const examplesBasePort = 17100

// useExamplesLayout switches to the fleet the configurations under examples/
// are written for: psu-01 and psu-02 (SCPI) on ports 17100-17101, env-01
// (key=value lines) 17102, tc-01 (Modbus TCP) 17103, bal-01 (CSV lines) 17104
// and thermo-01 (JSON lines) 17105, unless --base-port moves them all.
func (s *simFlags) useExamplesLayout() {
	s.scpi, s.lines, s.modbus, s.balances, s.thermos = 2, 1, 1, 1, 1
	if s.basePort == 0 {
		s.basePort = examplesBasePort
	}
}

func (s *simFlags) register(fs *flag.FlagSet, scpi, lines int) {
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
}

func (s *simFlags) fleet() (*sim.Fleet, error) {
	if s.examples {
		s.useExamplesLayout()
	}
	return sim.NewFleet(sim.FleetSpec{
		SCPI: s.scpi, Lines: s.lines, Modbus: s.modbus, Balances: s.balances, Thermometers: s.thermos,
		Seed: s.seed, PushHz: s.pushHz, BasePort: s.basePort,
	})
}

// cmdSim runs simulated instruments and prints a server configuration for them.
func cmdSim(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	var sf simFlags
	sf.register(fs, 20, 4)
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

// demoConfig describes every instrument of a fleet the way a user would in
// YAML: one model per kind of instrument, and devices that name their model and
// carry tags.
func demoConfig(fleet *sim.Fleet) *config.Config {
	c := &config.Config{Models: map[string]config.Model{}}
	for _, in := range fleet.Instruments() {
		kind := string(in.Kind())
		if _, ok := c.Models["sim-"+kind]; !ok {
			c.Models["sim-"+kind] = simModel(in.Kind())
		}
		c.Devices = append(c.Devices, config.Device{
			Name: in.Name(), Address: in.Addr(), Model: "sim-" + kind,
			Tags: map[string]string{"area": "demo", "kind": kind},
		})
	}
	c.Alarms = demoAlarms(driftDevice(fleet))
	return c
}

// driftDevice names the power supply whose set-point the demo sweeps: the last
// one, so the first ones keep their 12 V for whoever watches them. Empty when the
// fleet has no power supply.
func driftDevice(fleet *sim.Fleet) string {
	name := ""
	for _, in := range fleet.Instruments() {
		if in.Kind() == sim.KindSCPI {
			name = in.Name()
		}
	}
	return name
}

// demoAlarms are the demo's alarm limits. The drifting supply's set-point is swept
// by the demo (see driftSetPoint) through every limit; the other supplies sit at
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

// simModel is the device model of one kind of simulated instrument.
func simModel(k sim.Kind) config.Model {
	min0, max60, max200 := 0.0, 60.0, 200.0
	ms := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Millisecond) }
	switch k {
	case sim.KindSCPI:
		return config.Model{
			Driver: "scpi", Init: []string{"*CLS"}, ReplyTimeout: ms(1000),
			Channels: []config.Channel{
				{Name: "voltage", Query: "MEAS:VOLT?", Period: ms(100), Unit: "V"},
				{Name: "current", Query: "MEAS:CURR?", Period: ms(100), Unit: "A"},
				{Name: "setpoint", Query: "SOUR:VOLT?", Period: ms(1000), Unit: "V"},
				{Name: "output", Query: "OUTP?", Period: ms(1000), Type: "bool"},
			},
			Commands: []config.Command{
				{Name: "set_voltage", Template: "SOUR:VOLT {volts}", Args: []config.Arg{{Name: "volts", Type: "float", Min: &min0, Max: &max60}}},
				{Name: "output", Template: "OUTP {state}", Args: []config.Arg{{Name: "state", Type: "enum", Values: []string{"ON", "OFF"}}}},
				{Name: "identify", Template: "*IDN?", Reply: true},
				{Name: "error", Template: "SYST:ERR?", Reply: true},
			},
		}
	case sim.KindModbus:
		return config.Model{
			Driver: "modbus", UnitID: 1, ReplyTimeout: ms(1000),
			Channels: []config.Channel{
				{Name: "temp", Register: "input", Addr: sim.TCProcessReg, DataType: "float32", Period: ms(200), Unit: "degC"},
				{Name: "heater", Register: "input", Addr: sim.TCHeaterReg, Scale: 0.1, Period: ms(1000), Unit: "%"},
				{Name: "setpoint", Register: "holding", Addr: sim.TCSetPointReg, Scale: 0.1, Period: ms(1000), Unit: "degC"},
				{Name: "enabled", Register: "coil", Addr: sim.TCEnableCoil, Type: "bool", Period: ms(1000)},
			},
			Commands: []config.Command{
				{Name: "set_temperature", Channel: "setpoint", Args: []config.Arg{{Name: "degC", Min: &min0, Max: &max200}},
					Readback: "temp", Tolerance: 0.5, Settle: config.Duration(30 * time.Second)},
				{Name: "enable", Channel: "enabled", Args: []config.Arg{{Name: "on", Type: "bool"}}},
			},
		}
	case sim.KindBalance:
		return config.Model{
			Driver: "lines", LineFormat: "csv", IdleTimeout: ms(2000),
			Channels: []config.Channel{
				{Name: "mass", Key: "mass_g", Unit: "g"},
				{Name: "stable", Type: "bool"},
				{Name: "line_seq", Key: "seq", Type: "int"},
			},
		}
	case sim.KindThermometer:
		return config.Model{
			Driver: "lines", LineFormat: "json", IdleTimeout: ms(2000),
			Channels: []config.Channel{
				{Name: "temp", Key: "temp_c", Unit: "degC"},
				{Name: "line_seq", Key: "seq", Type: "int"},
			},
		}
	default: // sim.KindLines
		return config.Model{
			Driver: "lines", IdleTimeout: ms(2000),
			Channels: []config.Channel{
				{Name: "temp", Unit: "degC"},
				{Name: "pressure", Unit: "mbar"},
				{Name: "flow", Unit: "l/min"},
				{Name: "line_seq", Key: "seq", Type: "int"},
			},
		}
	}
}
