package devicemgr

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
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
	// StopGrace is how long Remove and a restarting Update let a command in
	// progress finish before aborting it. Default 5s.
	StopGrace time.Duration
}

// Manager holds every configured device. It does not run them itself: each
// *Device is a Service (Serve(ctx) error) that a supervisor runs. Once Start
// has handed them to a Runner (the devices supervisor), the set of devices can
// change while they run (Add, Remove, Update, Apply; see dynamic.go).
type Manager struct {
	pub     Publisher
	opts    Options
	feed    StateFeed
	metrics *metrics
	clock   pollClock

	// change serialises Start, Add, Remove, Update and Apply: one change of
	// the set of devices at a time.
	change sync.Mutex
	runner Runner // nil until Start

	mu      sync.RWMutex // guards devices and byName (lookups take the read lock)
	devices []*Device    // in configuration order, then in the order added
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
	if opts.StopGrace <= 0 {
		opts.StopGrace = 5 * time.Second
	}
	m := &Manager{pub: pub, opts: opts, byName: make(map[string]*Device), metrics: newMetrics(opts.Registerer)}
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return nil, fmt.Errorf("devices[%d] (%s): %w", i, specs[i].Name, err)
		}
		if _, dup := m.byName[specs[i].Name]; dup {
			return nil, fmt.Errorf("devices[%d].name: duplicate device %q", i, specs[i].Name)
		}
		d := newDevice(m, specs[i], nil)
		m.devices = append(m.devices, d)
		m.byName[d.spec.Name] = d
	}
	return m, nil
}

// Devices returns the device processes in configuration order.
func (m *Manager) Devices() []*Device {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]*Device(nil), m.devices...)
}

// lookup returns the device called name.
func (m *Manager) lookup(name string) (*Device, error) {
	m.mu.RLock()
	d, ok := m.byName[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("device %q: %w", name, ErrNotFound)
	}
	return d, nil
}

// List returns every device's Info, sorted by name.
func (m *Manager) List() []Info {
	devs := m.Devices()
	out := make([]Info, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.Info())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Get returns one device's Info.
func (m *Manager) Get(name string) (Info, error) {
	d, err := m.lookup(name)
	if err != nil {
		return Info{}, err
	}
	return d.Info(), nil
}

// Tags returns the tags of a device (shared: do not modify them); ok is false
// when there is no such device. It is cheap enough to call for every sample:
// subscriptions that select devices by tag use it, so a device added or
// retagged at run time is selected without resubscribing.
func (m *Manager) Tags(name string) (tags map[string]string, ok bool) {
	m.mu.RLock()
	d, ok := m.byName[name]
	m.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return *d.tags.Load(), true
}

// Send runs a command on a device between its polls and returns the reply. It
// fails at once with ErrNotConnected when the device is not connected.
func (m *Manager) Send(ctx context.Context, device string, cmd Command) (Reply, error) {
	d, err := m.lookup(device)
	if err != nil {
		return Reply{}, err
	}
	return d.send(ctx, cmd)
}

// Abort cancels the command in progress on a device (see Device.Abort) and
// returns it ("" if the device was idle).
func (m *Manager) Abort(device, reason string) (string, error) {
	d, err := m.lookup(device)
	if err != nil {
		return "", err
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

// forget drops a removed device's series.
func (m *metrics) forget(device string) {
	for _, v := range []*prometheus.CounterVec{m.polls, m.overruns, m.requests, m.unsolicited, m.outOfStep} {
		v.DeleteLabelValues(device)
	}
	m.failures.DeletePartialMatch(prometheus.Labels{"device": device})
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

// newSeqs returns the counters of chans; a channel that prev (the device's
// previous process, which has exited) also has continues prev's numbering.
func newSeqs(chans []ChannelSpec, prev *seqs) seqs {
	s := seqs{n: make(map[string]*atomic.Uint64, len(chans))}
	for _, ch := range chans {
		if prev != nil && prev.n[ch.Name] != nil {
			s.n[ch.Name] = prev.n[ch.Name]
			continue
		}
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
