package devicemgr

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// Runner runs device processes: the devices supervisor. A
// *supervisor.Supervisor is one. Add starts a process (and returns once it is
// ready); Remove stops one (cancel, wait its Shutdown, ...) and forgets it.
type Runner interface {
	Add(spec supervisor.ChildSpec) error
	Remove(id string) error
}

// ChildSpec is how the device runs under its supervisor: permanent, 5 s to
// stop (its socket closes as soon as its context ends), with its mailbox, so
// that the supervisor fails queued commands when it restarts the process
// (never replayed) and the tree shows the mailbox's depth and the command in
// progress.
func (d *Device) ChildSpec() supervisor.ChildSpec {
	return supervisor.ChildSpec{ID: d.spec.Name, Service: d, Shutdown: 5 * time.Second, Mailbox: d.mb}
}

// Start hands every device to r, which runs them from then on (the devices
// supervisor, once it runs); devices added later are started on r too, and
// removed ones are stopped there. It returns the errors of the devices r
// refused (a duplicate name), each naming the device; the others run.
func (m *Manager) Start(r Runner) error {
	m.change.Lock()
	defer m.change.Unlock()
	if m.runner != nil {
		return errors.New("devicemgr: Start called twice")
	}
	m.runner = r
	var errs []error
	for _, d := range m.Devices() {
		if err := r.Add(d.ChildSpec()); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", d.spec.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Change says how a device's spec differs from the one it runs with.
type Change uint8

// Kinds of change.
const (
	Unchanged Change = iota
	// InPlace: only tags, units or the model's name differ; applied to the
	// running device without reconnecting.
	InPlace
	// Restart: anything else differs; the device stops and starts again with
	// the new spec (on a new connection).
	Restart
)

// String returns "unchanged", "in place" or "restart".
func (c Change) String() string {
	switch c {
	case InPlace:
		return "in place"
	case Restart:
		return "restart"
	}
	return "unchanged"
}

// Compare says how the device spec b differs from a (the names are not
// compared). Tags, channel units and the model's name can change in place;
// any other difference, including one in a field added to Spec later, needs
// a restart.
func Compare(a, b Spec) Change {
	x, y := a.withDefaults(), b.withDefaults()
	x.Name, y.Name = "", ""
	if len(x.Tags) == 0 {
		x.Tags = nil
	}
	if len(y.Tags) == 0 {
		y.Tags = nil
	}
	if reflect.DeepEqual(x, y) {
		return Unchanged
	}
	hot := func(s *Spec) {
		s.Tags, s.Model = nil, ""
		for i := range s.Channels {
			s.Channels[i].Unit = ""
		}
	}
	hot(&x)
	hot(&y)
	if reflect.DeepEqual(x, y) {
		return InPlace
	}
	return Restart
}

// Plan is what Apply changes (or would change): device names by kind of
// change, each list in the order of the specs given (Removed in the order the
// devices were configured).
type Plan struct {
	Added     []string
	Removed   []string
	Restarted []string // their spec changed: stopped and started again with it
	Updated   []string // only tags or units changed: applied in place
	Unchanged []string
}

// Plan returns what Apply(specs) would change, after checking specs as New
// does. It changes nothing.
func (m *Manager) Plan(specs []Spec) (Plan, error) {
	m.change.Lock()
	defer m.change.Unlock()
	return m.plan(specs)
}

func (m *Manager) plan(specs []Spec) (Plan, error) {
	var p Plan
	seen := make(map[string]bool, len(specs))
	for i := range specs {
		if err := specs[i].Validate(); err != nil {
			return Plan{}, fmt.Errorf("devices[%d] (%s): %w", i, specs[i].Name, err)
		}
		name := specs[i].Name
		if seen[name] {
			return Plan{}, fmt.Errorf("devices[%d].name: duplicate device %q", i, name)
		}
		seen[name] = true
		d, err := m.lookup(name)
		if err != nil {
			p.Added = append(p.Added, name)
			continue
		}
		switch Compare(d.configured(), specs[i]) {
		case Unchanged:
			p.Unchanged = append(p.Unchanged, name)
		case InPlace:
			p.Updated = append(p.Updated, name)
		case Restart:
			p.Restarted = append(p.Restarted, name)
		}
	}
	for _, d := range m.Devices() {
		if !seen[d.spec.Name] {
			p.Removed = append(p.Removed, d.spec.Name)
		}
	}
	return p, nil
}

// Apply makes specs the set of devices, as a diff against the running ones
// (see Plan): devices not in specs are removed (as Remove does, their
// commands failing with ErrDeviceRemoved); devices whose spec changed in more
// than tags and units are restarted with it, their channels keeping their
// sequence numbering; new ones are added and started; tag and unit changes
// are applied in place; unchanged devices are not touched at all (same
// connection, same numbering, no gap). Stopping devices let their command in
// progress finish for Options.StopGrace, all at once, before aborting it;
// new devices do not wait for them, unless they take over the address of
// one. Apply returns once everything is done.
//
// specs are checked first (as New checks them); a problem changes nothing.
// Once started, Apply goes to the end, whoever waits for it; the error then
// joins what failed (a device that would not stop, a name the runner
// refused), and the rest is applied. The devices keep the order of specs.
func (m *Manager) Apply(specs []Spec) (Plan, error) {
	m.change.Lock()
	defer m.change.Unlock()
	p, err := m.plan(specs)
	if err != nil {
		return Plan{}, err
	}
	byName := make(map[string]*Spec, len(specs))
	for i := range specs {
		byName[specs[i].Name] = &specs[i]
	}
	// Every device to stop is stopped on a goroutine of its own (its command
	// in progress may take up to StopGrace), and a restarted one then starts
	// with its new spec there. New devices start meanwhile, except one whose
	// address a stopping device still uses: it waits for that one to be gone
	// (never two connections to one instrument).
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	gone := map[string]chan struct{}{} // by address: closed once the device there stopped
	stop := func(n string, r *retirement) {
		d, _ := m.lookup(n)
		done := make(chan struct{})
		gone[d.spec.Address] = done
		wg.Go(func() {
			defer close(done)
			for _, err := range m.stop([]*Device{d}, []*retirement{r}) {
				fail(err)
			}
			if !r.removed {
				if err := m.add(*r.next, &d.seq); err != nil {
					fail(err)
				}
			}
		})
	}
	for _, n := range p.Removed {
		stop(n, &retirement{err: fmt.Errorf("device %s: %w", n, ErrDeviceRemoved), removed: true})
	}
	for _, n := range p.Restarted {
		stop(n, &retirement{err: fmt.Errorf("device %s restarted with a new configuration (reload): %w", n, ErrNotConnected), next: byName[n]})
	}
	for _, n := range p.Added {
		if done, ok := gone[byName[n].Address]; ok {
			wg.Go(func() {
				<-done
				if err := m.add(*byName[n], nil); err != nil {
					fail(err)
				}
			})
			continue
		}
		if err := m.add(*byName[n], nil); err != nil {
			fail(err)
		}
	}
	for _, n := range p.Updated {
		d, _ := m.lookup(n)
		d.reconfigure(*byName[n])
	}
	wg.Wait()
	// Configuration order.
	order := make(map[string]int, len(specs))
	for i := range specs {
		order[specs[i].Name] = i
	}
	m.mu.Lock()
	slices.SortStableFunc(m.devices, func(a, b *Device) int { return order[a.spec.Name] - order[b.spec.Name] })
	m.mu.Unlock()
	return p, errors.Join(errs...)
}

// Add adds a device and, once Start was called, starts it. It fails with an
// error naming the field for a bad spec, or with ErrExists.
func (m *Manager) Add(spec Spec) error {
	m.change.Lock()
	defer m.change.Unlock()
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("device %s: %w", spec.Name, err)
	}
	if _, err := m.lookup(spec.Name); err == nil {
		return fmt.Errorf("device %q: %w", spec.Name, ErrExists)
	}
	return m.add(spec, nil)
}

// Remove stops a device for good and forgets it. Its queued commands fail
// with why (nil: ErrDeviceRemoved), new ones are refused with it, and the
// command in progress gets Options.StopGrace to finish before it is aborted
// with why as its reason; then the device disconnects, publishes every
// channel DISCONNECTED with why's text, and its last Info (Removed set). The
// hub keeps no latest value of it (see Forgetter). Before Start, the device
// is only forgotten.
func (m *Manager) Remove(name string, why error) error {
	m.change.Lock()
	defer m.change.Unlock()
	d, err := m.lookup(name)
	if err != nil {
		return err
	}
	if why == nil {
		why = fmt.Errorf("device %s: %w", name, ErrDeviceRemoved)
	}
	return errors.Join(m.stop([]*Device{d}, []*retirement{{err: why, removed: true}})...)
}

// Forgetter is implemented by a Publisher that keeps the latest value of
// every channel (telemetry.Hub): the Manager tells it which channels are gone.
type Forgetter interface {
	Forget(match func(*telemetry.Sample) bool)
}

// add creates and starts a device (the caller holds m.change and has checked
// the spec); prev carries the sequence numbering of a restarted device.
func (m *Manager) add(spec Spec, prev *seqs) error {
	d := newDevice(m, spec.withDefaults(), prev)
	m.mu.Lock()
	m.devices = append(m.devices, d)
	m.byName[spec.Name] = d
	m.mu.Unlock()
	if m.runner == nil {
		return nil
	}
	if err := m.runner.Add(d.ChildSpec()); err != nil {
		m.forget(d)
		return fmt.Errorf("device %s: not started: %w", spec.Name, err)
	}
	return nil
}

// stop retires devs (each for its reason), all at once, then stops them on
// the runner one by one and forgets them. It returns what failed.
func (m *Manager) stop(devs []*Device, why []*retirement) []error {
	done := make(chan struct{}, len(devs))
	for i, d := range devs {
		go func() {
			d.retire(why[i], m.opts.StopGrace)
			done <- struct{}{}
		}()
	}
	for range devs {
		<-done
	}
	var errs []error
	for _, d := range devs {
		if m.runner != nil {
			if err := m.runner.Remove(d.spec.Name); err != nil && !errors.Is(err, supervisor.ErrNotFound) {
				errs = append(errs, fmt.Errorf("device %s: %w", d.spec.Name, err))
			}
		}
		d.finish()
		m.forget(d)
	}
	return errs
}

// forget drops d from the manager (and its metrics and latest values).
func (m *Manager) forget(d *Device) {
	name := d.spec.Name
	m.mu.Lock()
	if m.byName[name] == d {
		delete(m.byName, name)
	}
	m.devices = slices.DeleteFunc(m.devices, func(x *Device) bool { return x == d })
	m.mu.Unlock()
	if r := d.retiring.Load(); r == nil || r.removed {
		m.metrics.forget(name)
		if f, ok := m.pub.(Forgetter); ok {
			f.Forget(func(s *telemetry.Sample) bool { return s.Device == name })
		}
	} else if f, ok := m.pub.(Forgetter); ok {
		// Restarted: the channels the new spec drops are gone.
		keep := map[string]bool{}
		for _, ch := range r.next.Channels {
			keep[ch.Name] = true
		}
		f.Forget(func(s *telemetry.Sample) bool { return s.Device == name && !keep[s.Channel] })
	}
}

// retirement is why a device stops for good or for a restart.
type retirement struct {
	err     error // what its commands fail with; its final LastError
	removed bool  // for good, not restarted with a new spec
	next    *Spec // a restart's new spec
}

// retire stops the device taking commands: new ones are refused and queued
// ones fail with r.err; the command in progress gets grace to finish, then is
// aborted with r.err's text as its reason, and retire waits (at most the reply
// timeout) for it to end with that reason, before the process is stopped
// (which would fail it with a less telling one). The device goes on polling
// until its process is stopped.
func (d *Device) retire(r *retirement, grace time.Duration) {
	d.retiring.Store(r)
	d.mb.FailQueued(r.err)
	t := time.NewTimer(grace)
	defer t.Stop()
	aborted := false
	for {
		if f, busy := d.mb.InProgress(); !busy || f.Kind != supervisor.KindCall {
			return
		}
		select {
		case <-d.served:
		case <-t.C:
			if aborted {
				return // stopping the process ends it
			}
			aborted = true
			if cmd, _ := d.Abort(r.err.Error()); cmd != "" {
				d.m.opts.Logger.Warn("command aborted: the device is stopping", "device", d.spec.Name, "command", cmd, "reason", r.err)
			}
			t.Reset(d.spec.ReplyTimeout)
		}
	}
}

// stopped is the end of Serve: the device's final state and samples, with
// the reason it was stopped, and its queued commands failed.
func (d *Device) stopped() {
	reason := "device stopped"
	var queued error = fmt.Errorf("device stopped: %w", ErrNotConnected)
	r := d.retiring.Load()
	if r != nil {
		reason, queued = r.err.Error(), r.err
	}
	d.update(func(i *Info) {
		i.State = Stopped
		i.ConnectedSince = time.Time{}
		i.NextAttempt = time.Time{}
		if r != nil {
			i.LastError = reason
			i.Removed = r.removed
		}
	})
	d.publishBad(telemetry.Disconnected, reason)
	d.mb.FailQueued(queued)
	if r != nil {
		d.final.Store(true)
	}
}

// finish publishes the final state of a retired device whose process did not
// run when it was stopped (so Serve did not).
func (d *Device) finish() {
	if d.final.Load() || !d.alive.TryLock() {
		return
	}
	defer d.alive.Unlock()
	d.stopped()
}

// configured returns the spec the device was last configured with (before
// defaults, with in-place changes applied).
func (d *Device) configured() Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// reconfigure applies a spec that differs from the running one only in place
// (Compare): tags and units, seen in Info and by tag selectors at once. The
// connection and the polls go on untouched.
func (d *Device) reconfigure(spec Spec) {
	tags := maps.Clone(spec.Tags)
	d.tags.Store(&tags)
	d.mu.Lock()
	d.cfg = spec
	d.mu.Unlock()
	d.update(func(i *Info) {
		i.Tags = tags
		chans := slices.Clone(i.Channels) // earlier Info copies share the old slice
		for j := range chans {
			chans[j].Unit = spec.Channels[j].Unit
		}
		i.Channels = chans
	})
}
