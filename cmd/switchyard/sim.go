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
	seed        uint64
	pushHz      float64
	basePort    int
	control     string
}

func (s *simFlags) register(fs *flag.FlagSet, scpi, lines int) {
	fs.IntVar(&s.scpi, "scpi", scpi, "number of simulated SCPI power supplies (psu-01, ...)")
	fs.IntVar(&s.lines, "lines", lines, "number of simulated line-pushing environment monitors (env-01, ...)")
	fs.Uint64Var(&s.seed, "seed", 1, "noise seed of the simulated instruments")
	fs.Float64Var(&s.pushHz, "push-hz", 10, "lines per second pushed by each environment monitor")
	fs.IntVar(&s.basePort, "base-port", 0, "port of the first instrument, the others follow (0: free ports)")
	fs.StringVar(&s.control, "control", "127.0.0.1:7490", "HTTP address of the fault-injection control API (empty: none)")
}

func (s *simFlags) fleet() (*sim.Fleet, error) {
	return sim.NewFleet(sim.FleetSpec{SCPI: s.scpi, Lines: s.lines, Seed: s.seed, PushHz: s.pushHz, BasePort: s.basePort})
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
		fmt.Fprintf(stdout, "%-8s %-6s %s\n", in.Name(), in.Kind(), in.Addr())
	}
	return runFleet(ctx, fleet, sf.control, log)
}

// runFleet serves the fleet and its control API until ctx ends.
func runFleet(ctx context.Context, fleet *sim.Fleet, control string, log *slog.Logger) error {
	errc := make(chan error, 2)
	var srv *http.Server
	if control != "" {
		ln, err := net.Listen("tcp", control)
		if err != nil {
			fleet.Close()
			return fmt.Errorf("sim control API: %w", err)
		}
		srv = &http.Server{Handler: fleet.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { errc <- ignoreClosed(srv.Serve(ln)) }()
		log.Info("simulator control API", "url", "http://"+ln.Addr().String()+"/instruments")
	} else {
		errc <- nil
	}
	go func() { errc <- fleet.Serve(ctx) }()
	err := <-errc
	if srv != nil {
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}
	fleet.Close()
	err2 := <-errc
	return errors.Join(err, err2)
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// demoConfig describes every instrument of a fleet the way a user would in YAML.
func demoConfig(fleet *sim.Fleet) *config.Config {
	c := &config.Config{}
	min0, max60 := 0.0, 60.0
	for _, in := range fleet.Instruments() {
		switch in.Kind() {
		case sim.KindSCPI:
			c.Devices = append(c.Devices, config.Device{
				Name: in.Name(), Address: in.Addr(), Driver: "scpi",
				Init:         []string{"*CLS"},
				ReplyTimeout: config.Duration(time.Second),
				Channels: []config.Channel{
					{Name: "voltage", Query: "MEAS:VOLT?", Period: config.Duration(100 * time.Millisecond), Unit: "V"},
					{Name: "current", Query: "MEAS:CURR?", Period: config.Duration(100 * time.Millisecond), Unit: "A"},
					{Name: "setpoint", Query: "SOUR:VOLT?", Period: config.Duration(time.Second), Unit: "V"},
					{Name: "output", Query: "OUTP?", Period: config.Duration(time.Second), Type: "bool"},
				},
				Commands: []config.Command{
					{Name: "set_voltage", Template: "SOUR:VOLT {volts}", Args: []config.Arg{{Name: "volts", Type: "float", Min: &min0, Max: &max60}}},
					{Name: "output", Template: "OUTP {state}", Args: []config.Arg{{Name: "state", Type: "enum", Values: []string{"ON", "OFF"}}}},
					{Name: "identify", Template: "*IDN?", Reply: true},
					{Name: "error", Template: "SYST:ERR?", Reply: true},
				},
			})
		case sim.KindLines:
			c.Devices = append(c.Devices, config.Device{
				Name: in.Name(), Address: in.Addr(), Driver: "lines",
				IdleTimeout: config.Duration(2 * time.Second),
				Channels: []config.Channel{
					{Name: "temp", Unit: "degC"},
					{Name: "pressure", Unit: "mbar"},
					{Name: "flow", Unit: "l/min"},
					{Name: "line_seq", Key: "seq", Type: "int"},
				},
			})
		}
	}
	c.Alarms = demoAlarms()
	return c
}

// demoAlarms are the demo's alarm limits. psu-01's set-point is swept by the demo
// (see driftSetPoint) through every limit; the other supplies sit at 12 V inside
// theirs, and raise INVALID only when they fail.
func demoAlarms() []config.Alarm {
	f := func(v float64) *float64 { return &v }
	return []config.Alarm{
		{Device: "psu-01", Channel: "voltage", Group: "power", HiHi: f(17), High: f(15), Low: f(4), LoLo: f(2),
			Hysteresis: 0.2, Delay: config.Duration(time.Second)},
		{Device: "psu-*", Channel: "voltage", Group: "power", HiHi: f(20), High: f(15), Low: f(4), LoLo: f(2), Hysteresis: 0.2},
		{Device: "env-*", Channel: "pressure", Group: "vacuum", StaleAfter: config.Duration(5 * time.Second)},
	}
}
