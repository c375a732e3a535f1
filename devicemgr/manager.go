package devicemgr

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchyard/switchyard/telemetry"
)

// Publisher receives samples. telemetry.Hub implements it. Publish must not
// block, and must not keep batch (or use it) after it returns: devices reuse
// their batches from one poll to the next.
type Publisher interface {
	Publish(batch ...telemetry.Sample)
}

// Options configures a Manager. The zero value works.
type Options struct {
	// Logger receives connection events. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the manager's metrics. Default none.
	Registerer prometheus.Registerer
	// Now is the clock for sample timestamps. Default time.Now.
	Now func() time.Time
	// StableAfter: a connection that stays up this long resets the reconnect
	// backoff. Default 10s.
	StableAfter time.Duration
}

// Manager holds every configured device. It does not run them: each *Device is a
// Service (Serve(ctx) error) that the caller hands to a supervisor.
type Manager struct {
	pub     Publisher
	opts    Options
	feed    StateFeed
	metrics *metrics
	clock   pollClock

	devices []*Device
	byName  map[string]*Device
}

// New validates specs and returns a manager for them. Device names must be unique.
func New(specs []Spec, pub Publisher, opts Options) (*Manager, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StableAfter <= 0 {
		opts.StableAfter = 10 * time.Second
	}
	m := &Manager{pub: pub, opts: opts, byName: make(map[string]*Device), metrics: newMetrics(opts.Registerer)}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, fmt.Errorf("devices[%d] (%s): %w", i, specs[i].Name, err)
		}
		if _, dup := m.byName[specs[i].Name]; dup {
			return nil, fmt.Errorf("devices[%d].name: duplicate device %q", i, specs[i].Name)
		}
		d := newDevice(m, specs[i].withDefaults())
		m.devices = append(m.devices, d)
		m.byName[d.spec.Name] = d
	}
	return m, nil
}

// Devices returns the device processes in configuration order.
func (m *Manager) Devices() []*Device { return append([]*Device(nil), m.devices...) }

// List returns every device's Info, sorted by name.
func (m *Manager) List() []Info {
	out := make([]Info, 0, len(m.devices))
	for _, d := range m.devices {
		out = append(out, d.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one device's Info.
func (m *Manager) Get(name string) (Info, error) {
	d, ok := m.byName[name]
	if !ok {
		return Info{}, fmt.Errorf("device %q: %w", name, ErrNotFound)
	}
	return d.Info(), nil
}

// Send runs a command on a device between its polls and returns the reply. It
// fails at once with ErrNotConnected when the device is not connected.
func (m *Manager) Send(ctx context.Context, device string, cmd Command) (Reply, error) {
	d, ok := m.byName[device]
	if !ok {
		return Reply{}, fmt.Errorf("device %q: %w", device, ErrNotFound)
	}
	return d.send(ctx, cmd)
}

// Abort cancels the command in progress on a device (see Device.Abort) and
// returns it ("" if the device was idle).
func (m *Manager) Abort(device, reason string) (string, error) {
	d, ok := m.byName[device]
	if !ok {
		return "", fmt.Errorf("device %q: %w", device, ErrNotFound)
	}
	return d.Abort(reason)
}

// WatchStates returns a watcher of device state changes.
func (m *Manager) WatchStates() *StateWatch { return m.feed.Watch() }

// WatchEvery returns a new watcher of every state change, in order, up to
// capacity (see StateFeed.WatchEvery). Close it when done.
func (m *Manager) WatchEvery(capacity int) *StateWatch { return m.feed.WatchEvery(capacity) }

func seedFor(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

type metrics struct {
	polls       *prometheus.CounterVec
	overruns    *prometheus.CounterVec
	failures    *prometheus.CounterVec
	requests    *prometheus.CounterVec
	unsolicited *prometheus.CounterVec
	outOfStep   *prometheus.CounterVec
	connected   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_polls_total", Help: "Poll round trips, by device.",
		}, []string{"device"}),
		overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_poll_overruns_total", Help: "Poll cycles that took longer than their period, by device.",
		}, []string{"device"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_failures_total", Help: "Connection failures, by device and quality.",
		}, []string{"device", "quality"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_requests_total", Help: "Requests sent to instruments (SCPI lines that expect an answer, Modbus requests), by device.",
		}, []string{"device"}),
		unsolicited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_unsolicited_lines_total", Help: "Lines an instrument sent on its own, matching its model's unsolicited format, skipped; by device.",
		}, []string{"device"}),
		outOfStep: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_device_out_of_step_total", Help: "Times a device's reply did not fit what was asked and the connection was resynchronised, by device.",
		}, []string{"device"}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_devices_connected", Help: "Devices currently connected.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.overruns, m.failures, m.requests, m.unsolicited, m.outOfStep, m.connected)
	}
	return m
}

// seqs holds the per-channel sequence counters of a device; they outlive the
// device's goroutine so a restarted process continues the numbering. The map
// of configured channels is fixed at construction, so next needs no lock.
type seqs struct {
	n map[string]*atomic.Uint64
}

func newSeqs(chans []ChannelSpec) seqs {
	s := seqs{n: make(map[string]*atomic.Uint64, len(chans))}
	for _, ch := range chans {
		s.n[ch.Name] = new(atomic.Uint64)
	}
	return s
}

// next returns the channel's next sequence number (from 1). Every caller
// passes a configured channel; any other name gets 0.
func (s *seqs) next(channel string) uint64 {
	c := s.n[channel]
	if c == nil {
		return 0
	}
	return c.Add(1)
}
