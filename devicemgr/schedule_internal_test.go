package devicemgr

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Scheduling tests in a synctest bubble: fake time, no sockets, exact
// assertions. The polls are functions that record when they ran.

// schedDevice returns a device of a fresh manager with one poll group of the
// given period (its channels are never read: the tests pass their own poll).
func schedDevice(t *testing.T, m *Manager, name string) *Device {
	t.Helper()
	spec := Spec{Name: name, Address: "127.0.0.1:1", Driver: DriverSCPI,
		Channels: []ChannelSpec{{Name: "v", Query: "V?", Period: 100 * time.Millisecond}}}
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	d := newDevice(m, spec, nil)
	m.devices = append(m.devices, d)
	return d
}

func newSchedManager(t *testing.T) *Manager {
	t.Helper()
	m, err := New(nil, nopPublisher{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

type nopPublisher struct{}

func (nopPublisher) Publish(...telemetry.Sample) {}

// pollLog records the fake times at which a device polled.
type pollLog struct {
	mu    sync.Mutex
	start time.Time
	at    []time.Duration
}

func (l *pollLog) add() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.at = append(l.at, time.Since(l.start))
}

func (l *pollLog) times() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.at...)
}

// runSchedule runs d.schedule with poll until the test's bubble work is done.
func runSchedule(ctx context.Context, wg *sync.WaitGroup, d *Device, poll func(*pollGroup) error) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = d.schedule(ctx, d.pollGroups(), poll, func(*request) error { return nil })
	}()
}

func TestSharedSchedulerPollsEveryPeriodAndAHungDeviceDelaysNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newSchedManager(t)
		const period = 100 * time.Millisecond
		var devs []*Device
		logs := make([]*pollLog, 5)
		for i := range logs {
			devs = append(devs, schedDevice(t, m, "d"+string(rune('a'+i))))
			logs[i] = &pollLog{start: time.Now()}
		}
		hung := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for i, d := range devs {
			runSchedule(ctx, &wg, d, func(*pollGroup) error {
				logs[i].add()
				if i == 0 && len(logs[0].times()) == 2 {
					<-hung // the second poll of device 0 never returns on its own
				}
				return nil
			})
		}
		time.Sleep(10*period + period/2)
		synctest.Wait()
		// One scheduler goroutine for the one period, whatever the device count.
		m.clock.mu.Lock()
		if n := len(m.clock.periods); n != 1 {
			t.Errorf("%d period schedulers, want 1", n)
		}
		m.clock.mu.Unlock()

		if got := logs[0].times(); len(got) != 2 {
			t.Errorf("hung device polled %d times, want 2 (it is stuck in the second)", len(got))
		}
		for i := 1; i < len(logs); i++ {
			got := logs[i].times()
			// An immediate poll at the start, then one per period at the
			// device's slot phase: 11 or 12 in 10.5 periods.
			if len(got) < 11 || len(got) > 12 {
				t.Fatalf("device %d polled %d times in 10.5 periods, want 11–12: %v", i, len(got), got)
			}
			// The first tick after the poll on connecting is close to a
			// period later, not right away.
			if d := got[1] - got[0]; d < period*9/10 {
				t.Errorf("device %d: first tick %v after the poll on connecting, want about a period", i, d)
			}
			for j := 2; j < len(got); j++ {
				if d := got[j] - got[j-1]; d != period {
					t.Errorf("device %d: poll %d came %v after the previous one, want exactly %v (%v)", i, j, d, period, got)
				}
			}
		}
		// So few devices share one slot: one wake-up of the scheduler polls
		// them all (TestSchedulerSpreadsManyGroups: many are spread).
		phases := map[time.Duration]bool{}
		for i := 1; i < len(logs); i++ {
			got := logs[i].times()
			phases[got[len(got)-1]%period] = true
		}
		if len(phases) != 1 {
			t.Errorf("5 devices poll at phases %v: want one slot for so few", phases)
		}
		if n := devs[0].overruns.Load(); n != 0 {
			t.Errorf("hung device counted %d overruns while still in its poll", n)
		}
		close(hung)
		synctest.Wait()
		if n := devs[0].overruns.Load(); n != 1 {
			t.Errorf("hung device: %d overruns after its long poll ended, want 1 (counted once, slots skipped)", n)
		}
		cancel()
		wg.Wait()
		m.clock.mu.Lock()
		defer m.clock.mu.Unlock()
		if n := len(m.clock.periods); n != 0 {
			t.Errorf("%d period schedulers still running after every device left", n)
		}
	})
}

func TestSlowPollsAreOverrunsSkippedNotQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newSchedManager(t)
		const period = 100 * time.Millisecond
		d := schedDevice(t, m, "slow")
		log := &pollLog{start: time.Now()}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		runSchedule(ctx, &wg, d, func(*pollGroup) error {
			log.add()
			time.Sleep(period + period/2) // every cycle takes 1.5 periods
			return nil
		})
		time.Sleep(20*period + period/4)
		synctest.Wait()
		cancel()
		wg.Wait()
		got := log.times()
		// Skipped slots: a poll every 2 periods (the next free slot), never
		// back to back to catch up.
		for j := 1; j < len(got); j++ {
			if gap := got[j] - got[j-1]; gap < period+period/2 {
				t.Errorf("poll %d started %v after the previous one: a queued catch-up poll (%v)", j, gap, got)
			}
		}
		if len(got) < 9 || len(got) > 11 {
			t.Errorf("%d polls in 20 periods of 1.5-period cycles, want about 10: %v", len(got), got)
		}
		if n := d.overruns.Load(); n < uint64(len(got))-1 || n > uint64(len(got)) {
			t.Errorf("%d overruns for %d polls that each overran", n, len(got))
		}
	})
}

func TestCommandsRunBetweenPollsAndALongOneIsOneOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newSchedManager(t)
		const period = 100 * time.Millisecond
		d := schedDevice(t, m, "cmd")
		log := &pollLog{start: time.Now()}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = d.schedule(ctx, d.pollGroups(), func(*pollGroup) error { log.add(); return nil },
				func(req *request) error {
					time.Sleep(5 * period) // a command holding the lane for 5 periods
					req.reply(Reply{Text: "done"}, nil)
					return nil
				})
		}()
		time.Sleep(period / 2)
		if rep, err := d.mb.Call(ctx, Command{Raw: "*WAI"}); err != nil || rep.(Reply).Text != "done" {
			t.Fatalf("call = %v, %v", rep, err)
		}
		at := time.Since(log.start)
		time.Sleep(3 * period)
		synctest.Wait()
		cancel()
		<-done
		got := log.times()
		var during, after int
		for _, p := range got {
			switch {
			case p > period/2 && p < at:
				during++
			case p >= at:
				after++
			}
		}
		if during != 0 {
			t.Errorf("%d polls ran while the command held the lane: %v", during, got)
		}
		if after < 3 || after > 4 {
			t.Errorf("%d polls in the 3 periods after the command, want 3–4 (no backlog): %v", after, got)
		}
		if n := d.overruns.Load(); n != 1 {
			t.Errorf("%d overruns after one long command, want 1", n)
		}
	})
}

func TestSchedulerSlotsAndTickArithmetic(t *testing.T) {
	for _, tc := range []struct {
		period time.Duration
		groups int
		slots  int
	}{
		{time.Millisecond / 2, 1000, 1},
		{time.Millisecond, 1000, 1},
		{20 * time.Millisecond, 1, 1},
		{20 * time.Millisecond, 95, 1},
		{20 * time.Millisecond, 96, 2},
		{20 * time.Millisecond, 10000, 16},
		{100 * time.Millisecond, 20, 1},
		{100 * time.Millisecond, 200, 4},
		{100 * time.Millisecond, 1000, 16},
		{time.Second, 10000, maxSlots},
		{7*time.Millisecond + 999, 10000, 4},
		{333 * time.Millisecond, 100000, maxSlots},
		{23*time.Millisecond + 1, 10000, 16},
	} {
		if got := slotsFor(tc.period, tc.groups); got != tc.slots {
			t.Errorf("period %v, %d groups: %d slots, want %d", tc.period, tc.groups, got, tc.slots)
		}
		s := &periodScheduler{period: tc.period, slots: make([][]*pollTurn, tc.slots)}
		n := int64(len(s.slots))
		for k := int64(0); k < 3*n; k++ {
			if s.at(k+n)-s.at(k) != tc.period {
				t.Errorf("period %v: tick %d and %d are %v apart, want exactly one period", tc.period, k, k+n, s.at(k+n)-s.at(k))
			}
			if got := s.latest(s.at(k)); got != k {
				t.Errorf("period %v: latest(at(%d)) = %d", tc.period, k, got)
			}
			if got := s.latest(s.at(k+1) - 1); got != k {
				t.Errorf("period %v: latest(at(%d)-1ns) = %d, want %d", tc.period, k+1, got, k)
			}
		}
	}
}

// TestSchedulerSpreadsManyGroups subscribes a thousand groups one by one, as
// devices connecting: the period is cut into more slots as they come, every
// group in exactly one slot, the slots evenly filled, and each group gets
// exactly one token per period, at its slot's phase.
func TestSchedulerSpreadsManyGroups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c pollClock
		const period = 100 * time.Millisecond
		const groups = 1000
		wakes := make([]chan struct{}, groups)
		turns := make([]*pollTurn, groups)
		for i := range turns {
			wakes[i] = make(chan struct{}, 1)
			turns[i] = c.subscribe(period, wakes[i])
			if i%97 == 0 {
				time.Sleep(period / 7) // devices connect over time
			}
		}
		s := turns[0].s
		s.mu.Lock()
		if len(s.slots) != 16 {
			t.Errorf("%d slots for %d groups, want 16", len(s.slots), groups)
		}
		seen := map[*pollTurn]bool{}
		for i, slot := range s.slots {
			if len(slot) < groups/16-1 || len(slot) > groups/16+1 {
				t.Errorf("slot %d holds %d groups, want %d±1", i, len(slot), groups/16)
			}
			for _, tr := range slot {
				if seen[tr] || tr.slot != i {
					t.Errorf("group in slot %d is listed twice or says slot %d", i, tr.slot)
				}
				seen[tr] = true
			}
		}
		s.mu.Unlock()
		if len(seen) != groups {
			t.Fatalf("%d groups in the slots, want %d", len(seen), groups)
		}
		// Serve every token for 5 periods and record when each group got it.
		for _, tr := range turns {
			tr.served(tr.pending())
		}
		start := time.Now()
		got := make([][]time.Duration, groups)
		for step := time.Duration(0); step < 5*period; step += time.Millisecond / 2 {
			time.Sleep(time.Millisecond / 2)
			synctest.Wait()
			for i, tr := range turns {
				if tick := tr.pending(); tick != 0 {
					got[i] = append(got[i], time.Since(start))
					tr.served(tick)
					<-wakes[i]
				}
			}
		}
		phases := map[time.Duration]int{}
		for i := range got {
			if len(got[i]) < 4 || len(got[i]) > 5 {
				t.Fatalf("group %d got %d tokens in 5 periods, want 4–5: %v", i, len(got[i]), got[i])
			}
			for j := 1; j < len(got[i]); j++ {
				if d := got[i][j] - got[i][j-1]; d != period {
					t.Errorf("group %d: tokens %v apart, want %v", i, d, period)
				}
			}
			phases[got[i][0]%period]++
		}
		if len(phases) != 16 {
			t.Errorf("tokens come at %d phases, want 16", len(phases))
		}
		for _, tr := range turns {
			c.unsubscribe(tr)
		}
	})
}

// TestReslotPollsNoGroupTwiceInAPeriod: as groups join a period, its slots
// are cut finer (reslot) and the groups already there move to other slots;
// none of them gets two tokens less than three quarters of a period apart,
// counting the poll a device makes at once on subscribing as its first (a
// group moved to an earlier phase, or to a later one in the period it
// already polled, skips that tick), and every group goes on getting its
// tokens a period apart.
func TestReslotPollsNoGroupTwiceInAPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c pollClock
		const period = 100 * time.Millisecond
		const groups = 200 // 1, 2 and then 4 slots
		var wakes []chan struct{}
		var turns []*pollTurn
		var got [][]time.Duration
		defer func() {
			for _, tr := range turns {
				c.unsubscribe(tr)
			}
		}()
		start := time.Now()
		serve := func() {
			synctest.Wait()
			for i, tr := range turns {
				if tick := tr.pending(); tick != 0 {
					got[i] = append(got[i], time.Since(start))
					tr.served(tick)
					<-wakes[i]
				}
			}
		}
		for step := 0; step < 2*groups+1200; step++ {
			if step%2 == 0 && len(turns) < groups { // a group joins every millisecond
				// The device polls at once on subscribing: its first token.
				w := make(chan struct{}, 1)
				wakes, got = append(wakes, w), append(got, []time.Duration{time.Since(start)})
				turns = append(turns, c.subscribe(period, w))
			}
			time.Sleep(time.Millisecond / 2)
			serve()
		}
		if n := len(turns[0].s.slots); n != 4 {
			t.Fatalf("%d slots for %d groups, want 4", n, groups)
		}
		for i := range got {
			for j := 1; j < len(got[i]); j++ {
				if d := got[i][j] - got[i][j-1]; d < period*3/4 {
					t.Fatalf("group %d: tokens at %v and %v, %v apart: twice in one period", i, got[i][j-1], got[i][j], d)
				}
			}
			last := got[i][len(got[i])-3:]
			if last[1]-last[0] != period || last[2]-last[1] != period {
				t.Errorf("group %d: its last tokens at %v, want a period apart", i, last)
			}
		}
	})
}
