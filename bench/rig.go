package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// instrument is one simulated instrument as `switchyard sim` prints it.
type instrument struct {
	name, kind, addr string
}

// simProc is a running `switchyard sim` child.
type simProc struct {
	*child
	instruments []instrument
}

// startSim runs `switchyard sim` with scpi power supplies and lines pushers (each
// pushing pushHz lines/s) and waits until it has printed every instrument.
func (r *Runner) startSim(ctx context.Context, scpi, lines int, pushHz float64) (*simProc, error) {
	args := []string{"sim", "--scpi", strconv.Itoa(scpi), "--lines", strconv.Itoa(lines),
		"--push-hz", strconv.FormatFloat(pushHz, 'g', -1, 64), "--control", "127.0.0.1:0", "--seed", "1"}
	c, out, err := startChild("sim", r.opts.Binary, args, true, r.logPath("sim"))
	if err != nil {
		return nil, err
	}
	s := &simProc{child: c}
	got := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		want := scpi + lines
		for len(s.instruments) < want && sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			s.instruments = append(s.instruments, instrument{name: f[0], kind: f[1], addr: f[2]})
		}
		if len(s.instruments) < want {
			got <- fmt.Errorf("simulator printed %d of %d instruments", len(s.instruments), want)
		} else {
			got <- nil
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	limit := time.NewTimer(60*time.Second + time.Duration(scpi+lines)*5*time.Millisecond)
	defer limit.Stop()
	select {
	case err = <-got:
	case <-limit.C:
		err = fmt.Errorf("simulator did not list its instruments in time")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = c.stop(10 * time.Second)
		return nil, fmt.Errorf("%w; simulator stderr: %s", err, lastLine(c.tail()))
	}
	return s, nil
}

// pollQueries are the SCPI queries channels cycle through.
var pollQueries = []struct{ name, query string }{
	{"voltage", "MEAS:VOLT?"}, {"current", "MEAS:CURR?"}, {"setpoint", "SOUR:VOLT?"},
}

// pollChannels returns n float channels with one period, so the server reads them
// in one round trip; the floor poller sends the same joined query.
func pollChannels(n int, period time.Duration) []config.Channel {
	chans := make([]config.Channel, n)
	for i := range chans {
		q := pollQueries[i%len(pollQueries)]
		name := q.name
		if i >= len(pollQueries) {
			name = fmt.Sprintf("%s_%d", q.name, i)
		}
		chans[i] = config.Channel{Name: name, Query: q.query, Period: config.Duration(period)}
	}
	return chans
}

// joinedQuery is the line one poll of chans sends.
func joinedQuery(chans []config.Channel) string {
	qs := make([]string, len(chans))
	for i, c := range chans {
		qs[i] = c.Query
	}
	return strings.Join(qs, ";")
}

// lineChannels are the channels of a simulated line pusher: 4 samples per line.
func lineChannels() []config.Channel {
	return []config.Channel{
		{Name: "temp"}, {Name: "pressure"}, {Name: "flow"}, {Name: "line_seq", Key: "seq", Type: "int"},
	}
}

// serverConfig describes the simulator's instruments: SCPI ones with chans, line
// pushers with lineChannels. questdb and table may be empty.
func serverConfig(insts []instrument, chans []config.Channel, questdb, table string) (*config.Config, error) {
	g, err := freePort()
	if err != nil {
		return nil, err
	}
	h, err := freePort()
	if err != nil {
		return nil, err
	}
	c := &config.Config{Listen: config.Listen{GRPC: g, HTTP: h}, QuestDB: config.QuestDB{Address: questdb, Table: table}}
	for _, in := range insts {
		d := config.Device{Name: in.name, Address: in.addr}
		d.ReplyTimeout = config.Duration(time.Second)
		switch in.kind {
		case "scpi":
			d.Driver = "scpi"
			// The simulated supply takes joined messages: one round trip per
			// poll (joining is per model and off by default).
			join := true
			d.Join = &join
			d.Channels = chans
			d.Commands = []config.Command{{Name: "identify", Template: "*IDN?", Reply: true}}
		case "lines":
			d.Driver = "lines"
			d.IdleTimeout = config.Duration(2 * time.Second)
			d.Channels = lineChannels()
		default:
			return nil, fmt.Errorf("simulator printed instrument %s of unknown kind %q", in.name, in.kind)
		}
		c.Devices = append(c.Devices, d)
	}
	return c, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serverProc is a running `switchyard serve` child.
type serverProc struct {
	*child
	grpc, http string
	devices    int
}

// startServer writes cfg to the run's directory, starts `switchyard serve` on it
// and waits until its /metrics answers and every device is connected. md is
// sent with the readiness calls (the credentials, with authentication on).
func (r *Runner) startServer(ctx context.Context, cfg *config.Config, md ...metadata.MD) (*serverProc, error) {
	return r.startNamedServer(ctx, cfg, "", md...)
}

// startNamedServer is startServer with the name of its log file in
// Options.LogDir (""; server-<n>).
func (r *Runner) startNamedServer(ctx context.Context, cfg *config.Config, name string, md ...metadata.MD) (*serverProc, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	r.nconf++
	path := filepath.Join(r.dir, fmt.Sprintf("server-%d.yaml", r.nconf))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	args := []string{"serve", "--config", path}
	if r.opts.ProfileDir != "" {
		args = append(args, "--pprof")
	}
	if name == "" {
		name = fmt.Sprintf("server-%d", r.nconf)
	}
	c, _, err := startChild("server", r.opts.ServerBinary, args, false, r.logPath(name))
	if err != nil {
		return nil, err
	}
	s := &serverProc{child: c, grpc: cfg.Listen.GRPC, http: cfg.Listen.HTTP, devices: len(cfg.Devices)}
	conn, err := dial(s.grpc)
	if err != nil {
		_ = c.stop(20 * time.Second)
		return nil, err
	}
	defer conn.Close()
	devices := pb.NewDeviceServiceClient(conn)
	limit := 60*time.Second + time.Duration(len(cfg.Devices))*10*time.Millisecond
	// The switchyard_devices_connected gauge is not maintained by the server yet,
	// so readiness is asked of ListDevices.
	err = waitFor(ctx, limit, "the server's devices to connect", func() error {
		if err := c.exited(); err != nil {
			return err
		}
		if _, err := scrape(ctx, s.http); err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(ctx, metadata.Join(md...)), 10*time.Second)
		defer cancel()
		resp, err := devices.ListDevices(lctx, &pb.ListDevicesRequest{})
		if err != nil {
			return err
		}
		n := 0
		for _, d := range resp.GetDevices() {
			if d.GetState() == pb.DeviceState_DEVICE_STATE_CONNECTED {
				n++
			}
		}
		if n < s.devices {
			return fmt.Errorf("%d of %d devices connected", n, s.devices)
		}
		return nil
	})
	if err != nil {
		_ = c.stop(20 * time.Second)
		return nil, fmt.Errorf("%w; server stderr: %s", err, lastLine(c.tail()))
	}
	return s, nil
}

// logPath is where a child's stderr is kept in full: <LogDir>/<name>.log, or ""
// (not kept) without a LogDir.
func (r *Runner) logPath(name string) string {
	if r.opts.LogDir == "" {
		return ""
	}
	return filepath.Join(r.opts.LogDir, name+".log")
}

// lastLine is the last line of s.
func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
