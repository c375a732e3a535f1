package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// The replay joins of WatchAlarms and WatchDevices, run in a synctest bubble
// against in-memory archives whose Settle and pages the test interleaves with
// new transitions and state changes: every item from since_ns on reaches the
// client exactly once, in order, wherever it falls (archived before the
// replay, archived and watched during it, watched only, after it).

// collected is a streamOut that keeps what the handler sends.
type collected[T any] struct {
	mu   sync.Mutex
	msgs []*T
}

func (c *collected[T]) out() streamOut[T] {
	return streamOut[T]{header: func() error { return nil }, send: func(m *T) error {
		c.mu.Lock()
		c.msgs = append(c.msgs, m)
		c.mu.Unlock()
		return nil
	}}
}

// waitFor waits (in a synctest bubble: while the clock moves) until a
// message satisfies cond.
func (c *collected[T]) waitFor(cond func(*T) bool) {
	for {
		for _, m := range c.all() {
			if cond(m) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func (c *collected[T]) all() []*T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// memAlarms is an alarm archive in memory: a Sink of the engine and an
// AlarmArchive. hook, if set, runs before each page is read (and once in
// Settle, with page -1): the test acts there.
type memAlarms struct {
	mu   sync.Mutex
	ts   []alarm.Transition
	hook func(page int)
	// hang makes Settle wait until its context ends.
	hang bool
}

func (m *memAlarms) Record(_ context.Context, t alarm.Transition) {
	m.mu.Lock()
	m.ts = append(m.ts, t)
	m.mu.Unlock()
}

func (m *memAlarms) Settle(ctx context.Context) error {
	if m.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	if m.hook != nil {
		m.hook(-1)
	}
	return nil
}

// Replay reads pages of two transitions, each from the archive as it is then.
func (m *memAlarms) Replay(ctx context.Context, fromNs int64, _ ingest.ReplayOptions, each func([]alarm.Transition) error) error {
	for page := 0; ; page++ {
		if m.hook != nil {
			m.hook(page)
		}
		m.mu.Lock()
		var rows []alarm.Transition
		for _, t := range m.ts {
			if t.Time.UnixMicro() >= fromNs/1000 && len(rows) < 2 {
				rows = append(rows, t)
			}
		}
		m.mu.Unlock()
		if len(rows) == 0 {
			return nil
		}
		if err := each(rows); err != nil {
			return err
		}
		fromNs = rows[len(rows)-1].Time.UnixNano() + 1000
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// alarmRig is an engine archiving into a memAlarms, and a way to make
// transitions: each value published to d/v crosses a limit.
type alarmRig struct {
	hub     *telemetry.Hub
	eng     *alarm.Engine
	archive *memAlarms
	seq     uint64
	high    map[string]bool
}

func newAlarmRig(t *testing.T, ctx context.Context) *alarmRig {
	r := &alarmRig{hub: telemetry.NewHub(nil), archive: &memAlarms{}, high: map[string]bool{}}
	sub := r.hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	t.Cleanup(sub.Close)
	lim := alarm.Limits{HiHi: alarm.Threshold{Value: 50, Severity: alarm.Major}, High: alarm.Threshold{Value: 40, Severity: alarm.Minor}}
	eng, err := alarm.NewEngine([]alarm.Rule{{Group: "g", Limits: lim}}, sub, nil, alarm.Options{Logger: quiet(), Sinks: []alarm.Sink{r.archive}})
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	go func() { _ = eng.Serve(ctx) }()
	return r
}

// flip makes the next transition of channel ch (alternately RAISED HIHI and
// CLEARED) and waits until the engine archived it (the bubble's clock moves on
// only when every goroutine waits).
func (r *alarmRig) flip(ch string) {
	n := len(r.times())
	r.seq++
	r.high[ch] = !r.high[ch]
	v := 0.0
	if r.high[ch] {
		v = 60
	}
	r.hub.Publish(telemetry.Sample{Device: "d", Channel: ch, Seq: r.seq, Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
	for len(r.times()) == n {
		time.Sleep(time.Millisecond)
	}
}

func (r *alarmRig) times() []int64 {
	r.archive.mu.Lock()
	defer r.archive.mu.Unlock()
	out := make([]int64, len(r.archive.ts))
	for i, t := range r.archive.ts {
		out[i] = t.Time.UnixNano()
	}
	return out
}

func TestWatchAlarmsReplayJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		rig := newAlarmRig(t, ctx)
		for range 2 {
			rig.flip("a") // before since: not replayed
		}
		for range 3 {
			rig.flip("a") // since and after: replayed
		}
		rig.flip("other") // filtered out
		since := rig.times()[2]
		// While the replay runs: after the watch exists and before the
		// archive settles (archived and watched), between two pages (watched,
		// and read by the next page), after the last page (watched only).
		rig.archive.hook = func(page int) {
			if page == -1 || page == 1 || page == 3 {
				rig.flip("a")
			}
		}
		svc := &alarmService{alarms: rig.eng, archive: rig.archive, life: context.Background(), metrics: newMetrics(nil),
			limits: Limits{}.withDefaults(), log: quiet()}
		var got collected[pb.WatchAlarmsResponse]
		done := make(chan error, 1)
		go func() {
			done <- svc.watchAlarms(ctx, &pb.WatchAlarmsRequest{Filter: &pb.AlarmFilter{Channels: []string{"a"}}, SinceNs: since}, got.out())
		}()
		got.waitFor(func(m *pb.WatchAlarmsResponse) bool { return m.GetReplayEnd() != nil })
		synctest.Wait()
		rig.archive.hook = nil
		rig.flip("a") // live
		synctest.Wait()
		cancel()
		<-done

		var want []string
		rig.archive.mu.Lock()
		for _, tr := range rig.archive.ts {
			if tr.Time.UnixNano() >= since && tr.Alarm.Channel == "a" {
				want = append(want, fmt.Sprint(tr.Time.UnixNano(), " ", tr.Event))
			}
		}
		rig.archive.mu.Unlock()
		var seen []string
		ended, replayed, lastReplayed := false, uint64(0), int64(0)
		for i, m := range got.all() {
			if end := m.GetReplayEnd(); end != nil {
				if ended || !end.GetComplete() || end.GetReplayed() != replayed || end.GetLiveAfterNs() != lastReplayed {
					t.Fatalf("response %d: replay end %v after %d replayed, the last at %d (ended before: %v)", i, end, replayed, lastReplayed, ended)
				}
				ended = true
				continue
			}
			if m.GetReplayed() {
				lastReplayed = m.GetTransition().GetTimestampNs()
			}
			if m.GetReplayed() == ended {
				t.Errorf("response %d: replayed %v, after the replay's end: %v", i, m.GetReplayed(), ended)
			}
			if m.GetReplayed() {
				replayed++
			}
			seen = append(seen, fmt.Sprint(m.GetTransition().GetTimestampNs(), " ", alarm.Event(m.GetTransition().GetEvent())))
		}
		if !ended {
			t.Fatal("no replay end")
		}
		if strings.Join(seen, "\n") != strings.Join(want, "\n") {
			t.Fatalf("transitions from since on (%d replayed):\n%s\nwant each once, in order:\n%s", replayed, strings.Join(seen, "\n"), strings.Join(want, "\n"))
		}
		// 3 archived before, 3 archived and watched during the replay, 1 live.
		if replayed != 6 || len(want) != 7 {
			t.Fatalf("%d of %d replayed, want 6 of 7", replayed, len(want))
		}
	})
}

// memDevices is a device manager in memory whose every change also goes to
// its archive (pending until the archive settles).
type memDevices struct {
	feed    devicemgr.StateFeed
	mu      sync.Mutex
	infos   map[string]devicemgr.Info
	archive *memDeviceArchive
}

func (m *memDevices) List() []devicemgr.Info {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []devicemgr.Info
	for _, i := range m.infos {
		out = append(out, i)
	}
	return out
}

func (m *memDevices) Get(name string) (devicemgr.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.infos[name], nil
}

func (m *memDevices) Send(context.Context, string, devicemgr.Command) (devicemgr.Reply, error) {
	return devicemgr.Reply{}, nil
}
func (m *memDevices) Abort(context.Context, string, string) (string, error) { return "", nil }
func (m *memDevices) WatchStates() *devicemgr.StateWatch                    { return m.feed.Watch() }
func (m *memDevices) WatchEvery(n int) *devicemgr.StateWatch                { return m.feed.WatchEvery(n) }
func (m *memDevices) Tags(name string) (map[string]string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, ok := m.infos[name]
	return info.Tags, ok
}

// change moves a device to a state now (a millisecond after the last change).
func (m *memDevices) change(name string, st devicemgr.State) {
	time.Sleep(time.Millisecond)
	m.mu.Lock()
	info := m.infos[name]
	info.Name, info.Address, info.State, info.ChangedAt = name, "10.0.0.1:5025", st, time.Now()
	info.LastError = fmt.Sprint("error before ", st)
	m.infos[name] = info
	m.mu.Unlock()
	m.archive.add(info)
	m.feed.Publish(info)
}

// memDeviceArchive is a DeviceArchive in memory: changes are pending until
// Settle, then read by Replay in pages of two, with the test's hook before
// Settle makes them readable (page -1) and before each page.
type memDeviceArchive struct {
	mu      sync.Mutex
	pending []ingest.DeviceChange
	stored  []ingest.DeviceChange
	hook    func(page int)
}

func (a *memDeviceArchive) add(info devicemgr.Info) {
	st := info.Status()
	st.ChangedAt = st.ChangedAt.Truncate(time.Microsecond)
	a.mu.Lock()
	a.pending = append(a.pending, ingest.DeviceChange{DeviceStatus: st})
	a.mu.Unlock()
}

func (a *memDeviceArchive) Settle(context.Context) error {
	if a.hook != nil {
		a.hook(-1)
	}
	a.mu.Lock()
	a.stored, a.pending = append(a.stored, a.pending...), nil
	a.mu.Unlock()
	return nil
}

func (a *memDeviceArchive) Replay(_ context.Context, fromNs int64, _ ingest.ReplayOptions, each func([]ingest.DeviceChange) error) (uint64, error) {
	for page := 0; ; page++ {
		if a.hook != nil {
			a.hook(page)
		}
		a.mu.Lock()
		var rows []ingest.DeviceChange
		for _, c := range a.stored {
			if c.ChangedAt.UnixNano() >= fromNs && len(rows) < 2 {
				rows = append(rows, c)
			}
		}
		a.mu.Unlock()
		if len(rows) == 0 {
			return 0, nil
		}
		if err := each(rows); err != nil {
			return 0, err
		}
		fromNs = rows[len(rows)-1].ChangedAt.UnixNano() + 1000
	}
}

func TestWatchDevicesReplayJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		archive := &memDeviceArchive{}
		devs := &memDevices{infos: map[string]devicemgr.Info{}, archive: archive}
		for _, n := range []string{"a", "b", "c"} {
			devs.change(n, devicemgr.Connected)
		}
		devs.change("a", devicemgr.Backoff) // before since: not replayed
		devs.change("a", devicemgr.Connecting)
		since := devs.info("a").ChangedAt.UnixNano()
		devs.change("b", devicemgr.Backoff)
		archive.hook = func(page int) {
			switch page {
			case -1: // the watch exists, the archive settles: both
				devs.change("a", devicemgr.Connected)
			case 1: // after the archive was read: the watch only, two of one device
				devs.change("b", devicemgr.Connecting)
				devs.change("b", devicemgr.Connected)
			case 2: // a's last replayed change is no longer its state
				devs.change("a", devicemgr.Backoff)
			}
		}
		svc := &deviceService{devices: devs, archive: archive, life: context.Background(), metrics: newMetrics(nil),
			limits: Limits{}.withDefaults(), log: quiet()}
		var got collected[pb.WatchDevicesResponse]
		done := make(chan error, 1)
		go func() { done <- svc.watchDevices(ctx, &pb.WatchDevicesRequest{SinceNs: since}, got.out()) }()
		got.waitFor(func(m *pb.WatchDevicesResponse) bool { return m.GetReplayEnd() != nil })
		synctest.Wait()
		archive.hook = nil
		devs.change("a", devicemgr.Connected) // live
		synctest.Wait()
		cancel()
		<-done

		// Each change from since on, once, in order; c (unchanged) as it is.
		want := map[string][]string{}
		for _, c := range append(archive.stored, archive.pending...) {
			if c.ChangedAt.UnixNano() >= since {
				want[c.Device] = append(want[c.Device], fmt.Sprint(c.ChangedAt.UnixMicro(), " ", c.State))
			}
		}
		want["c"] = []string{fmt.Sprint(devs.info("c").ChangedAt.UnixMicro(), " CONNECTED")}
		seen := map[string][]string{}
		last := map[string]*pb.Device{}
		ended := false
		for i, m := range got.all() {
			if end := m.GetReplayEnd(); end != nil {
				if ended || !end.GetComplete() || end.GetReplayed() != 3 {
					t.Fatalf("response %d: replay end %v, want complete after 3 replayed", i, end)
				}
				ended = true
				continue
			}
			if m.GetReplayed() == ended {
				t.Errorf("response %d: replayed %v, after the replay's end: %v", i, m.GetReplayed(), ended)
			}
			d := m.GetDevice()
			seen[d.GetName()] = append(seen[d.GetName()], fmt.Sprint(m.GetTimestampNs()/1000, " ", d.GetState().String()[len("DEVICE_STATE_"):]))
			last[d.GetName()] = d
			if m.GetSkipped() != 0 {
				t.Errorf("response %d: %d skipped", i, m.GetSkipped())
			}
		}
		if len(want["a"]) != 4 || len(want["b"]) != 3 {
			t.Fatalf("the scenario changed: %v", want)
		}
		for _, n := range []string{"a", "b", "c"} {
			if !slices.Equal(seen[n], want[n]) {
				t.Errorf("%s:\n%s\nwant each change once, in order:\n%s", n, strings.Join(seen[n], "\n"), strings.Join(want[n], "\n"))
			}
			cur := devs.info(n)
			if w := deviceToProto(&cur); !protoEqual(last[n], w) {
				t.Errorf("%s ends on %v, want its current state %v", n, last[n], w)
			}
		}
	})
}

func (m *memDevices) info(name string) devicemgr.Info {
	i, _ := m.Get(name)
	return i
}

func protoEqual(a, b *pb.Device) bool { return proto.Equal(a, b) }

// watchAlarmsPastReplay runs svc.watchAlarms(req) in a synctest bubble until
// it sent its replay's end, then runs live, lets everything settle, ends the
// stream (cancel, ctx's) and returns what it sent.
func watchAlarmsPastReplay(ctx context.Context, cancel context.CancelFunc, svc *alarmService, req *pb.WatchAlarmsRequest, live func()) []*pb.WatchAlarmsResponse {
	var got collected[pb.WatchAlarmsResponse]
	done := make(chan error, 1)
	go func() { done <- svc.watchAlarms(ctx, req, got.out()) }()
	got.waitFor(func(m *pb.WatchAlarmsResponse) bool { return m.GetReplayEnd() != nil })
	live()
	synctest.Wait()
	cancel()
	<-done
	return got.all()
}

// TestWatchReplayEnds: without an archive, or with one that does not answer
// within the replay timeout, a watch with since_ns says at once (or after the
// timeout) that its replay is incomplete, and goes live; a since_ns in the
// future needs no archive: the replay is complete at once.
func TestWatchReplayEnds(t *testing.T) {
	for _, c := range []struct {
		name   string
		hang   bool
		since  time.Duration // from now; zero: 1 ns after the epoch
		reason string
	}{
		{"no archive", false, 0, "this server has no archive to replay"},
		{"archive hangs", true, 0, "the archive did not answer within 10s"},
		{"since in the future", true, 2 * time.Minute, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				rig := newAlarmRig(t, ctx)
				svc := &alarmService{alarms: rig.eng, life: context.Background(), metrics: newMetrics(nil),
					limits: Limits{}.withDefaults(), log: quiet()}
				if c.hang {
					rig.archive.hang = true
					svc.archive = rig.archive
				}
				start := time.Now()
				since := int64(1)
				if c.since != 0 {
					since = time.Now().Add(c.since).UnixNano()
				}
				var waited time.Duration
				msgs := watchAlarmsPastReplay(ctx, cancel, svc, &pb.WatchAlarmsRequest{SinceNs: since}, func() {
					waited = time.Since(start).Truncate(time.Second)
					rig.flip("a")
				})
				if len(msgs) != 2 {
					t.Fatalf("%d responses, want the replay's end and one live transition: %v", len(msgs), msgs)
				}
				end := msgs[0].GetReplayEnd()
				if end.GetComplete() != (c.reason == "") || end.GetReplayed() != 0 || !strings.Contains(end.GetReason(), c.reason) {
					t.Errorf("replay end %v, want complete %v %q", end, c.reason == "", c.reason)
				}
				if want := map[bool]time.Duration{false: 0, true: DefaultReplayTimeout}[c.hang && c.since == 0]; waited != want {
					t.Errorf("the replay ended after %v, want %v", waited, want)
				}
				if tr := msgs[1].GetTransition(); tr == nil || msgs[1].GetReplayed() {
					t.Errorf("then %v, want a live transition", msgs[1])
				}
			})
		})
	}
}

// watchersAlarms is a cluster node's Alarms as WatchAlarms sees it: its watches
// come from an alarm.Watchers fed from outside an engine (every owner's
// transitions, out of time order).
type watchersAlarms struct {
	Alarms
	ws *alarm.Watchers
}

func (a watchersAlarms) Watch(match func(*alarm.Transition) bool) *alarm.Watch {
	return a.ws.Watch(match)
}

// TestWatchAlarmsNoReplayOnACluster: a WatchAlarms whose watch has no join
// point (a cluster node's) answers any since_ns, in the past or in the future,
// with a replay_end that is not complete, says why and claims no
// live_after_ns, reads no archive, and then sends every live transition, also
// one older than a transition it sent before.
func TestWatchAlarmsNoReplayOnACluster(t *testing.T) {
	for _, since := range []time.Duration{-time.Hour, 2 * time.Minute} {
		t.Run(since.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				ws := alarm.NewWatchers(0)
				read := false
				archive := &memAlarms{hook: func(int) { read = true }}
				svc := &alarmService{alarms: watchersAlarms{ws: ws}, archive: archive, life: context.Background(),
					metrics: newMetrics(nil), limits: Limits{}.withDefaults(), log: quiet()}
				var now time.Time
				msgs := watchAlarmsPastReplay(ctx, cancel, svc, &pb.WatchAlarmsRequest{SinceNs: time.Now().Add(since).UnixNano()}, func() {
					now = time.Now()
					for _, at := range []time.Time{now.Add(time.Second), now} { // two owners', out of order
						ws.Offer(&alarm.Transition{Time: at, Event: alarm.Raised, Alarm: alarm.Alarm{Device: "d", Channel: "c"}})
					}
				})
				if len(msgs) != 3 {
					t.Fatalf("%d responses, want the replay's end and two live transitions: %v", len(msgs), msgs)
				}
				end := msgs[0].GetReplayEnd()
				if end.GetComplete() || end.GetLiveAfterNs() != 0 || !strings.Contains(end.GetReason(), "cluster node") {
					t.Errorf("replay end %v, want not complete, no live_after_ns, a reason naming the cluster node", end)
				}
				if read {
					t.Error("the archive was read")
				}
				for i, want := range []time.Time{now.Add(time.Second), now} {
					if m := msgs[i+1]; m.GetReplayed() || m.GetTransition().GetTimestampNs() != want.UnixNano() {
						t.Errorf("response %d: %v, want the live transition at %d", i+1, m, want.UnixNano())
					}
				}
			})
		})
	}
}

// TestReplayedRemovedDevice: the archive's last state of a device the server
// no longer has is replayed with removed set when it is STOPPED (its final
// state), and not otherwise; a device the server has is never removed.
func TestReplayedRemovedDevice(t *testing.T) {
	at := time.Unix(1000, 0)
	change := func(dev, state string, s int) ingest.DeviceChange {
		return ingest.DeviceChange{DeviceStatus: telemetry.DeviceStatus{Device: dev, State: state, ChangedAt: at.Add(time.Duration(s) * time.Second)}}
	}
	changes := []ingest.DeviceChange{
		change("gone", "CONNECTED", 1), change("gone", "STOPPED", 2), change("gone", "CONNECTING", 3), change("gone", "STOPPED", 4),
		change("cut", "CONNECTED", 5), change("cut", "STOPPED", 6), change("cut", "BACKOFF", 7),
		change("here", "STOPPED", 8),
	}
	current := map[string]devicemgr.Info{"here": {Name: "here", State: devicemgr.Connecting, ChangedAt: at.Add(9 * time.Second)}}
	var got []bool
	for _, r := range replayedInfos(changes, current) {
		got = append(got, r.Removed)
	}
	if want := []bool{false, false, false, true, false, false, false, false}; !slices.Equal(got, want) {
		t.Fatalf("removed per replayed change %v, want %v (only gone's last, STOPPED)", got, want)
	}
}
