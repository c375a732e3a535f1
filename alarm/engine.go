package alarm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/telemetry"
)

// DefaultTickInterval is how often the engine lets time pass in its machines
// (delays, stale values, shelf expiry) when Options.TickInterval is zero.
const DefaultTickInterval = 250 * time.Millisecond

// Sink receives every transition, in order, on the engine's goroutine, with
// the context of the engine's Serve. Record may wait (back-pressure from an
// archive at its bound) until ctx ends; the engine waits with it.
type Sink interface {
	Record(ctx context.Context, t Transition)
}

// States is where the engine learns device state changes; the device
// manager's status watch (devicemgr.StatusWatch) is one.
type States interface {
	Ready() <-chan struct{}
	Take() []telemetry.DeviceStatus
}

// Options configures an Engine. The zero value works.
type Options struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger logs transitions and limit changes. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the engine's metrics. Default nil: not registered.
	Registerer prometheus.Registerer
	// Sinks receive every transition (the archive). Default none.
	Sinks []Sink
	// TickInterval: see DefaultTickInterval.
	TickInterval time.Duration
	// WatchCapacity bounds each Watch's queue. Default DefaultWatchCapacity.
	WatchCapacity int
	// Interest, when the engine's subscription selects samples with its
	// Wants, learns the channels SetLimits gives limits at run time, so that
	// their samples reach the engine from then on, and the rules SetRules
	// gives it. Default nil: the subscription delivers every sample.
	Interest *Interest
}

// Engine evaluates alarm rules against live samples and device states. Create it
// with NewEngine, run it with Serve.
type Engine struct {
	rules  []Rule
	sub    *telemetry.Subscription
	states States
	opts   Options
	log    *slog.Logger

	reqs   chan func()
	exited atomic.Pointer[chan struct{}] // closed when the running Serve returns; nil before

	watchers *Watchers

	// Owned by the Serve goroutine.
	ctx      context.Context      // Serve's, for the sinks
	machines map[chanKey]*Machine // nil value: no rule matches
	byDevice map[string][]*Machine
	devUp    map[string]devState
	lastUs   int64 // the newest transition's time, µs since the Unix epoch (see stamp)

	transitions *prometheus.CounterVec
	active      prometheus.Gauge
}

type devState struct {
	up      bool
	stopped bool // stopped by the server (shutdown): not a failure
	reason  string
}

// NewEngine returns an engine for rules fed by sub (subscribe it Lossless to every
// sample, so no transition is missed) and states. It validates the rules.
func NewEngine(rules []Rule, sub *telemetry.Subscription, states States, opts Options) (*Engine, error) {
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return nil, fmt.Errorf("alarm rule %d: %w", i, err)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = DefaultTickInterval
	}
	if opts.WatchCapacity <= 0 {
		opts.WatchCapacity = DefaultWatchCapacity
	}
	e := &Engine{
		rules: slices.Clone(rules), sub: sub, states: states, opts: opts, log: opts.Logger,
		reqs:     make(chan func()),
		watchers: NewWatchers(opts.WatchCapacity),
		machines: make(map[chanKey]*Machine),
		byDevice: make(map[string][]*Machine),
		devUp:    make(map[string]devState),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_alarm_transitions_total",
			Help: "Alarm transitions by event.",
		}, []string{"event"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_alarm_active",
			Help: "Alarms that are active (in alarm or latched and unacknowledged).",
		}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(e.transitions, e.active)
	}
	// Transitions are later than the engine: a watch made before the first
	// one is After its start, not after every transition ever archived.
	e.lastUs = opts.Now().UnixMicro()
	e.watchers.orderedFrom(e.lastUs)
	return e, nil
}

// Serve evaluates alarms until ctx ends. A supervisor may call it again after it
// returned; the alarm states carry over. It must not run twice at once.
func (e *Engine) Serve(ctx context.Context) error {
	exited := make(chan struct{})
	if old := e.exited.Load(); old != nil {
		select {
		case <-*old:
		default:
			return errors.New("alarm: Serve is already running")
		}
	}
	e.exited.Store(&exited)
	defer close(exited)
	e.ctx = ctx
	tick := time.NewTicker(e.opts.TickInterval)
	defer tick.Stop()
	var buf []telemetry.Sample
	var stateReady <-chan struct{}
	if e.states != nil {
		stateReady = e.states.Ready()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-e.sub.Ready():
			buf = e.sub.Drain(buf[:0], 4096)
			now := e.opts.Now()
			for i := range buf {
				e.onSample(now, &buf[i])
			}
			clear(buf)
		case <-stateReady:
			now := e.opts.Now()
			for _, st := range e.states.Take() {
				e.onDevice(now, &st)
			}
		case <-tick.C:
			now := e.opts.Now()
			for _, m := range e.machines {
				if m != nil {
					e.emit(m.Tick(now))
				}
			}
		case f := <-e.reqs:
			f()
		}
	}
}

// machine returns the machine of a channel, creating it from the first matching
// rule; nil when no rule matches.
func (e *Engine) machine(device, channel string) *Machine {
	key := chanKey{device, channel}
	if m, ok := e.machines[key]; ok {
		return m
	}
	var m *Machine
	for i := range e.rules {
		if e.rules[i].Matches(device, channel) {
			m = e.addMachine(device, channel, e.rules[i].Group, e.rules[i].Limits)
			break
		}
	}
	e.machines[key] = m
	return m
}

func (e *Engine) addMachine(device, channel, group string, l Limits) *Machine {
	m := NewMachine(device, channel, group, l)
	e.machines[chanKey{device, channel}] = m
	e.byDevice[device] = append(e.byDevice[device], m)
	if st, ok := e.devUp[device]; ok && !st.up {
		m.DeviceState(e.opts.Now(), false, st.reason) // nothing to report yet
	}
	return m
}

func (e *Engine) onSample(now time.Time, s *telemetry.Sample) {
	if s.Quality == telemetry.Disconnected && e.devUp[s.Device].stopped {
		return // the server stopped the device on purpose; see onDevice
	}
	if m := e.machine(s.Device, s.Channel); m != nil {
		e.emit(m.Sample(now, s))
	}
	for _, m := range e.byDevice[s.Device] {
		if m.a.Limits.Setpoint == s.Channel {
			e.emit(m.Setpoint(now, s))
		}
	}
}

// onDevice applies a device state change. A device the server stopped (at
// shutdown) raises nothing: its alarms keep their last state rather than flooding
// panels and the archive with INVALID on every restart of Switchyard.
func (e *Engine) onDevice(now time.Time, info *telemetry.DeviceStatus) {
	if info.Removed {
		e.forgetDevice(now, info.Device)
		return
	}
	if info.Stopped {
		st := e.devUp[info.Device]
		st.stopped = true
		e.devUp[info.Device] = st
		return
	}
	up := info.Up
	reason := info.State
	if info.LastError != "" {
		reason += ": " + info.LastError
	}
	prev, known := e.devUp[info.Device]
	e.devUp[info.Device] = devState{up: up, reason: reason}
	if known && !prev.stopped && prev.up == up {
		return
	}
	for _, m := range e.byDevice[info.Device] {
		e.emit(m.DeviceState(now, up, reason))
	}
}

// SetRules replaces the alarm rules as a whole, at once (a configuration
// reload). A channel whose first matching rule now gives it another group or
// other limits gets them, as a LimitsChanged transition by who (a condition
// the new limits do not support clears); a channel no rule selects any more
// loses its alarm (an active one clears first); a channel whose rule gives
// what it gave before keeps its limits, also limits an operator set at run
// time (SetLimits). The rules are checked first: a bad one changes nothing.
func (e *Engine) SetRules(ctx context.Context, rules []Rule, who string) error {
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return fmt.Errorf("%w: alarm rule %d: %w", ErrBadRequest, i, err)
		}
	}
	rules = slices.Clone(rules)
	return e.do(ctx, func() {
		old := e.rules
		e.rules = rules
		e.opts.Interest.setRules(rules)
		now := e.opts.Now()
		for key, m := range e.machines {
			if m == nil {
				delete(e.machines, key) // no rule selected it; look again at its next sample
				continue
			}
			before, after := firstRule(old, m.a.Device, m.a.Channel), firstRule(rules, m.a.Device, m.a.Channel)
			if before == after || before != nil && after != nil && before.Group == after.Group && reflect.DeepEqual(before.Limits, after.Limits) {
				continue
			}
			if after == nil {
				if before != nil {
					e.drop(now, m, who, "alarm rule removed by a configuration reload")
				}
				continue
			}
			m.a.Group = after.Group
			ts, err := m.SetLimits(now, after.Limits, who, "configuration reloaded")
			if err != nil {
				e.log.Error("alarm limits from the configuration refused", "alarm", m.a.Key(), "err", err) // checked above
				continue
			}
			e.emit(ts)
		}
	})
}

func firstRule(rules []Rule, device, channel string) *Rule {
	for i := range rules {
		if rules[i].Matches(device, channel) {
			return &rules[i]
		}
	}
	return nil
}

// forgetDevice drops the alarms of a device removed from the configuration.
func (e *Engine) forgetDevice(now time.Time, device string) {
	for _, m := range slices.Clone(e.byDevice[device]) {
		e.drop(now, m, "reload", "device removed by a configuration reload")
	}
	for key := range e.machines {
		if key.device == device && e.machines[key] == nil {
			delete(e.machines, key)
		}
	}
	delete(e.devUp, device)
	e.opts.Interest.forget(device)
}

// drop forgets a channel's alarm; an active one first clears (its limits
// emptied, a transition by who), so panels and the archive see it end.
func (e *Engine) drop(now time.Time, m *Machine, who, why string) {
	if m.a.Active() {
		if ts, err := m.SetLimits(now, Limits{}, who, why); err == nil {
			e.emit(ts)
		}
	}
	delete(e.machines, chanKey{m.a.Device, m.a.Channel})
	e.byDevice[m.a.Device] = slices.DeleteFunc(e.byDevice[m.a.Device], func(x *Machine) bool { return x == m })
	if len(e.byDevice[m.a.Device]) == 0 {
		delete(e.byDevice, m.a.Device)
	}
}

// emit stamps transitions (see stamp) and hands them to the sinks and watches.
func (e *Engine) emit(ts []Transition) {
	for i := range ts {
		t := &ts[i]
		t.Time = e.stamp(t.Time)
		e.transitions.WithLabelValues(t.Event.String()).Inc()
		e.log.Info("alarm", "event", t.Event.String(), "alarm", t.Alarm.Key(), "condition", t.Alarm.Condition.String(),
			"severity", t.Alarm.Severity.String(), "latched", t.Alarm.Latched.String(), "message", t.Alarm.Message, "who", t.Who)
		for _, s := range e.opts.Sinks {
			s.Record(e.ctx, *t)
		}
		e.watchers.Offer(t)
	}
	if len(ts) > 0 {
		e.countActive()
	}
}

// stamp returns the time of the next transition: at, cut to the microsecond
// (the archive's precision), and later than every transition before it by at
// least a microsecond. Transitions of one engine (several of them can share an
// instant: a batch of samples is taken at one time) thus each have a
// timestamp of their own, in the order they happened, which is what the
// archive's DEDUP key needs to keep them all and what a replay (WatchAlarms
// since_ns) uses as its cursor. It shifts a burst by microseconds at most.
func (e *Engine) stamp(at time.Time) time.Time {
	us := max(at.UnixMicro(), e.lastUs+1)
	e.lastUs = us
	return time.UnixMicro(us)
}

// countActive updates the gauge of active alarms.
func (e *Engine) countActive() {
	n := 0
	for _, m := range e.machines {
		if m != nil && m.a.Active() {
			n++
		}
	}
	e.active.Set(float64(n))
}

// Watch returns a new watch of the transitions match selects (all when nil).
// Close it when done.
func (e *Engine) Watch(match func(*Transition) bool) *Watch { return e.watchers.Watch(match) }

// do runs f on the Serve goroutine and waits for it.
func (e *Engine) do(ctx context.Context, f func()) error {
	exited := e.exited.Load()
	if exited == nil {
		return ErrNotRunning
	}
	done := make(chan struct{})
	select {
	case e.reqs <- func() { f(); close(done) }:
	case <-*exited:
		return ErrNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	<-done
	return nil
}

// List returns the alarms of every configured channel that has published, sorted
// by device and channel; only the active ones when activeOnly.
func (e *Engine) List(ctx context.Context, activeOnly bool) ([]Alarm, error) {
	var out []Alarm
	err := e.do(ctx, func() {
		for _, m := range e.machines {
			if m != nil && (!activeOnly || m.a.Active()) {
				out = append(out, m.a)
			}
		}
	})
	slices.SortFunc(out, func(a, b Alarm) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Channel, b.Channel))
	})
	return out, err
}

// act runs an operator action on one channel's machine.
func (e *Engine) act(ctx context.Context, device, channel string, create bool, f func(m *Machine, now time.Time) ([]Transition, error)) (Alarm, error) {
	var a Alarm
	var ferr error
	err := e.do(ctx, func() {
		// Only channels that published have an alarm, unless limits are being set.
		m := e.machines[chanKey{device, channel}]
		if create {
			if m = e.machine(device, channel); m == nil {
				m = e.addMachine(device, channel, "", Limits{})
			}
		}
		if m == nil {
			ferr = fmt.Errorf("%w: %s/%s", ErrNotFound, device, channel)
			return
		}
		ts, err := f(m, e.opts.Now())
		if err != nil {
			ferr = err
			return
		}
		e.emit(ts)
		a = m.a
	})
	return a, cmp.Or(err, ferr)
}

// Ack acknowledges the alarm of device/channel.
func (e *Engine) Ack(ctx context.Context, device, channel, who, comment string) (Alarm, error) {
	return e.act(ctx, device, channel, false, func(m *Machine, now time.Time) ([]Transition, error) {
		return m.Ack(now, who, comment)
	})
}

// Shelve shelves the alarm of device/channel until until (zero: unshelve).
func (e *Engine) Shelve(ctx context.Context, device, channel string, until time.Time, who, comment string) (Alarm, error) {
	return e.act(ctx, device, channel, false, func(m *Machine, now time.Time) ([]Transition, error) {
		return m.Shelve(now, until, who, comment)
	})
}

// SetLimits replaces the limits of device/channel at run time, for a channel no
// rule selects too. The change is a LimitsChanged transition (archived, logged).
func (e *Engine) SetLimits(ctx context.Context, device, channel string, l Limits, who, comment string) (Alarm, error) {
	if device == "" || channel == "" {
		return Alarm{}, fmt.Errorf("%w: device and channel are required", ErrBadRequest)
	}
	if err := l.Validate(); err != nil {
		return Alarm{}, fmt.Errorf("%w: limits: %w", ErrBadRequest, err)
	}
	e.opts.Interest.add(device, channel)
	e.opts.Interest.add(device, l.Setpoint)
	return e.act(ctx, device, channel, true, func(m *Machine, now time.Time) ([]Transition, error) {
		return m.SetLimits(now, l, who, comment)
	})
}

// Get returns the alarm (with its limits in force) of device/channel.
func (e *Engine) Get(ctx context.Context, device, channel string) (Alarm, error) {
	return e.act(ctx, device, channel, false, func(*Machine, time.Time) ([]Transition, error) { return nil, nil })
}
