package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/config"
	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
)

// plantDevice is one device of a test plant's configuration.
type plantDevice struct {
	name, addr string
	period     string // of the voltage channel
	high       int    // its own alarm rule's high limit; 0: none
}

// plantYAML is a configuration of devices on the simulator's power supplies,
// polled every second, with their own alarm rules where they have one.
func plantYAML(devs []plantDevice, extra string) string {
	var b strings.Builder
	b.WriteString(`listen: {grpc: "127.0.0.1:0", http: "127.0.0.1:0"}
models:
  psu:
    driver: scpi
    reply_timeout: 10s
    channels:
      - {name: voltage, query: "MEAS:VOLT?", period: 1s, unit: V}
      - {name: current, query: "MEAS:CURR?", period: 1s, unit: A}
    commands:
      - {name: set_voltage, template: "SOUR:VOLT {volts}", args: [{name: volts, min: 0, max: 60}]}
devices:
`)
	for _, d := range devs {
		fmt.Fprintf(&b, "  - {name: %s, address: %q, model: psu", d.name, d.addr)
		if d.period != "" {
			fmt.Fprintf(&b, `, channels: [{name: voltage, query: "MEAS:VOLT?", period: %s, unit: V}]`, d.period)
		}
		b.WriteString("}\n")
	}
	b.WriteString("alarms:\n")
	for _, d := range devs {
		if d.high > 0 {
			fmt.Fprintf(&b, "  - {device: %s, channel: voltage, high: %d}\n", d.name, d.high)
		}
	}
	b.WriteString("  - {device: \"*\", channel: voltage, high: 59}\n")
	return b.String() + extra
}

// writeFile writes text to path aside and renames it, as editors save.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// received is one sample as the wildcard subscriber got it, and when.
type received struct {
	s  *svv1.Sample
	at time.Time
}

// collector keeps what a stream received.
type collector struct {
	mu       sync.Mutex
	samples  []received
	squashed uint64
	dropped  uint64
	err      error
}

func (c *collector) snapshot() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]received(nil), c.samples...)
}

// TestReloadTwoHundredDevices: 150 of 200 simulated power supplies run; one
// reload, asked through the API, adds the other 50 (started on the simulator
// through its control API), removes 50, changes 10 (5 of them only in their
// alarm limits) and leaves 90 untouched. The 90 untouched and the 5
// limit-only devices keep their connection (the simulator accepted one each)
// and their sequence numbers without a gap; the 5 changed ones reconnect with
// their numbering going on; the 50 new ones stream to a wildcard subscriber
// that was there before, within their first poll period; the removed ones
// send their final state, and a command queued on one fails with
// FAILED_PRECONDITION / DEVICE_REMOVED while the one in progress finishes.
// Before that, an invalid configuration changes nothing and returns every
// problem.
func TestReloadTwoHundredDevices(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 150, Seed: 16})
	ctlSrv := httptest.NewServer(fleet.Handler())
	defer ctlSrv.Close()
	name := func(i int) string { return fmt.Sprintf("psu-%03d", i) }
	var before []plantDevice
	for i := 1; i <= 150; i++ {
		d := plantDevice{name: name(i), addr: fleet.Instrument(name(i)).Addr()}
		if i >= 56 && i <= 60 {
			d.high = 50
		}
		before = append(before, d)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "plant.yaml")
	writeFile(t, path, plantYAML(before, ""))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), ConfigPath: path})
	if err != nil {
		t.Fatal(err)
	}
	serveApp(t, a)
	waitAllConnected(t, a.devices)
	grpcAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys, devs := svv1.NewSystemServiceClient(conn), svv1.NewDeviceServiceClient(conn)

	// The wildcard subscriber, the device watcher and the event watcher, there
	// before the reload.
	streams, endStreams := context.WithCancel(ctx)
	defer endStreams()
	sub, err := svv1.NewTelemetryServiceClient(conn).Subscribe(streams, &svv1.SubscribeRequest{Selector: &svv1.Selector{Devices: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Header(); err != nil {
		t.Fatal(err)
	}
	var got collector
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			resp, err := sub.Recv()
			got.mu.Lock()
			if err != nil {
				got.err = err
				got.mu.Unlock()
				return
			}
			now := time.Now()
			for _, s := range resp.GetSamples() {
				got.samples = append(got.samples, received{s, now})
			}
			got.squashed, got.dropped = resp.GetSquashed(), resp.GetDropped()
			got.mu.Unlock()
		}
	})
	watch, err := devs.WatchDevices(streams, &svv1.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var wmu sync.Mutex
	removedFinal := map[string]*svv1.Device{}
	var watchedReloads []*svv1.ConfigReload
	wg.Go(func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				return
			}
			wmu.Lock()
			if resp.GetRemoved() {
				removedFinal[resp.GetDevice().GetName()] = resp.GetDevice()
			}
			if r := resp.GetReload(); r != nil {
				watchedReloads = append(watchedReloads, r)
			}
			wmu.Unlock()
		}
	})
	events, err := sys.WatchSupervisionEvents(streams, &svv1.WatchSupervisionEventsRequest{
		Kinds: []svv1.SupervisionEventKind{svv1.SupervisionEventKind_SUPERVISION_EVENT_KIND_RECONFIGURED}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Header(); err != nil {
		t.Fatal(err)
	}

	// An invalid configuration: nothing changes, every problem comes back.
	hash := a.config.Active().Config.Hash
	broken := append([]plantDevice(nil), before...)
	broken[1].addr = "nowhere"
	bad := strings.Replace(plantYAML(broken, "  - {device: psu-001, channel: voltage, high: lots}\n"), "period: 1s", "period: 0s", 1)
	writeFile(t, path, bad)
	_, err = sys.ReloadConfig(ctx, &svv1.ReloadConfigRequest{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || grpcErrorInfo(st).GetReason() != "CONFIG_INVALID" {
		t.Fatalf("invalid configuration: %v", err)
	}
	for _, p := range []string{
		fmt.Sprintf("%s:%d: models.psu.channels[0].period: must be > 0", path, lineOf(bad, "period: 0s")),
		fmt.Sprintf("%s:%d: devices[1].address: ", path, lineOf(bad, "nowhere")),
		fmt.Sprintf("%s:%d: alarms[6].high: want a number, got \"lots\"", path, lineOf(bad, "lots")),
	} {
		if !strings.Contains(st.Message(), p) {
			t.Errorf("the refusal does not say %q:\n%s", p, st.Message())
		}
	}
	if got := a.config.Active().Config.Hash; got != hash || len(a.devices.List()) != 150 {
		t.Fatalf("after a refused reload: hash %s (was %s), %d devices", got, hash, len(a.devices.List()))
	}

	// A command in progress and one queued on a device the reload removes.
	if _, err := fleet.Instrument("psu-001").UpdateFaults(func(f *sim.Faults) { f.Slow = 4 * time.Second }); err != nil {
		t.Fatal(err)
	}
	doomed := deviceOf(t, a, "psu-001").Mailbox()
	first, second := make(chan error, 1), make(chan error, 1)
	send := func(v string, res chan<- error) {
		_, err := devs.SendCommand(ctx, &svv1.SendCommandRequest{Device: "psu-001", Command: &svv1.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{v}})
		res <- err
	}
	go send("5", first)
	eventually.True(t, 30*time.Second, "the first command in progress on psu-001", func() bool {
		f, ok := doomed.InProgress()
		return ok && f.Kind == supervisor.KindCall
	})
	go send("6", second)
	eventually.True(t, 10*time.Second, "the second command queued on psu-001", func() bool { return doomed.Depth() == 1 })

	// The new configuration; the new instruments start on the simulator first.
	var after []plantDevice
	for i := 51; i <= 200; i++ {
		d := plantDevice{name: name(i)}
		if i > 150 {
			code, body := httpDo(t, "POST", ctlSrv.URL+"/instruments", fmt.Sprintf(`{"name": %q, "kind": "scpi"}`, name(i)))
			if code != http.StatusCreated {
				t.Fatalf("adding %s to the simulator: %d %s", name(i), code, body)
			}
		}
		d.addr = fleet.Instrument(name(i)).Addr()
		switch {
		case i <= 55:
			d.period = "500ms" // restarted
		case i <= 60:
			d.high = 40 // limits only
		}
		after = append(after, d)
	}
	writeFile(t, path, plantYAML(after, ""))
	reloadAt := time.Now()
	resp, err := sys.ReloadConfig(ctx, &svv1.ReloadConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReload()
	t.Logf("reload: %s (took %v)", r.GetSummary(), time.Duration(r.GetDurationNs()))
	d := r.GetDiff()
	if !r.GetApplied() || len(d.GetAdded()) != 50 || len(d.GetRemoved()) != 50 || len(d.GetRestarted()) != 5 || len(d.GetUpdated()) != 5 ||
		d.GetUnchanged() != 90 || !d.GetAlarms() || d.GetAdded()[0] != "psu-151" || d.GetRemoved()[0] != "psu-001" || d.GetRestarted()[0] != "psu-051" ||
		d.GetUpdated()[0].GetDevice() != "psu-056" || d.GetUpdated()[0].GetChanged()[0] != "alarm limits" || r.GetBy() != "anonymous" {
		t.Fatalf("reload = %v", r)
	}

	// The queued command failed as the device went; the one in progress finished.
	err = <-second
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || grpcErrorInfo(st).GetReason() != "DEVICE_REMOVED" ||
		!strings.Contains(st.Message(), "device removed by reload") {
		t.Errorf("the queued command: %v", err)
	}
	if err := <-first; err != nil {
		t.Errorf("the command in progress: %v", err)
	}

	// Every new device streams; the removed ones have said goodbye; the
	// restarted ones are back.
	// (The server's own channels, device "switchyard", stream too.)
	isNew := func(n string) bool { return strings.HasPrefix(n, "psu-") && n > "psu-150" }
	eventually.True(t, 60*time.Second, "every new device's first sample, every removed device's final one, the restarted ones back", func() bool {
		firstNew, final, back := map[string]bool{}, map[string]bool{}, map[string]bool{}
		for _, rc := range got.snapshot() {
			s := rc.s
			switch {
			case isNew(s.GetDevice()) && s.GetQuality() == svv1.Quality_QUALITY_GOOD:
				firstNew[s.GetDevice()] = true
			case s.GetDevice() <= "psu-050" && s.GetQuality() == svv1.Quality_QUALITY_DISCONNECTED:
				final[s.GetDevice()+"/"+s.GetChannel()] = true
			case s.GetDevice() >= "psu-051" && s.GetDevice() <= "psu-055" && s.GetQuality() == svv1.Quality_QUALITY_GOOD && rc.at.After(reloadAt):
				back[s.GetDevice()] = true
			}
		}
		return len(firstNew) == 50 && len(final) == 100 && len(back) == 5
	})
	// Two more polls of every device that stays after the reload returned.
	doneAt := time.Now()
	eventually.True(t, 60*time.Second, "two polls of every device after the reload", func() bool {
		n := map[string]int{}
		for _, rc := range got.snapshot() {
			if rc.at.After(doneAt) && rc.s.GetChannel() == "current" {
				n[rc.s.GetDevice()]++
			}
		}
		for i := 51; i <= 200; i++ {
			if n[name(i)] < 2 {
				return false
			}
		}
		return true
	})
	ev, err := events.Recv()
	if err != nil || ev.GetEvent().GetReload().GetHash() != r.GetHash() {
		t.Errorf("WatchSupervisionEvents: %v, %v", ev, err)
	}
	endStreams()
	wg.Wait()
	samples := got.snapshot()
	if got.squashed != 0 || got.dropped != 0 {
		t.Fatalf("the subscriber squashed %d and dropped %d samples; contiguity cannot be checked", got.squashed, got.dropped)
	}

	// Contiguous numbering for every device that stayed, and the restarted
	// ones' numbering goes on.
	last := map[string]uint64{}
	firstSeen := map[string]received{}
	for _, rc := range samples {
		s := rc.s
		key := s.GetDevice() + "/" + s.GetChannel()
		if _, ok := firstSeen[s.GetDevice()]; !ok {
			firstSeen[s.GetDevice()] = rc
		}
		if l, ok := last[key]; ok && s.GetSeq() != l+1 {
			t.Errorf("%s: seq %d after %d", key, s.GetSeq(), l)
		}
		last[key] = s.GetSeq()
		n := s.GetDevice()
		if n >= "psu-056" && n <= "psu-150" && s.GetQuality() != svv1.Quality_QUALITY_GOOD {
			t.Errorf("%s (untouched) published %v %q", key, s.GetQuality(), s.GetError())
		}
		if n <= "psu-050" && s.GetQuality() == svv1.Quality_QUALITY_DISCONNECTED && !strings.Contains(s.GetError(), "device removed by reload") {
			t.Errorf("%s: final sample %q", key, s.GetError())
		}
	}
	// No reconnection, counted by the simulator and by the server.
	infos := map[string]*svv1.Device{}
	list, err := devs.ListDevices(context.Background(), &svv1.ListDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, dv := range list.GetDevices() {
		infos[dv.GetName()] = dv
	}
	if len(infos) != 150 || infos["psu-001"] != nil || infos["psu-200"] == nil {
		t.Fatalf("%d devices listed after the reload", len(infos))
	}
	for i := 51; i <= 200; i++ {
		n := name(i)
		want := uint64(1)
		if i <= 55 {
			want = 2
		}
		if c := fleet.Instrument(n).Counters().Accepted; c != want {
			t.Errorf("%s: the simulator accepted %d connections, want %d", n, c, want)
		}
		if rc := infos[n].GetReconnections(); rc != 0 {
			t.Errorf("%s: %d reconnections", n, rc)
		}
		if isNew(n) {
			// Its first sample came from its first poll, at once on connecting.
			dv, fs := infos[n], firstSeen[n]
			if fs.s.GetSeq() != 1 || fs.s.GetTimestampNs()-dv.GetConnectedSince().AsTime().UnixNano() > int64(time.Second) {
				t.Errorf("%s: first sample seq %d at %v, connected at %v", n, fs.s.GetSeq(), time.Unix(0, fs.s.GetTimestampNs()), dv.GetConnectedSince().AsTime())
			}
		}
	}
	var slowest time.Duration
	for i := 151; i <= 200; i++ {
		slowest = max(slowest, firstSeen[name(i)].at.Sub(reloadAt))
	}
	t.Logf("the last new device's first sample reached the subscriber %v after the reload was asked", slowest)
	for i := 56; i <= 60; i++ {
		if a, err := a.alarms.Get(context.Background(), name(i), "voltage"); err != nil || a.Limits.High.Value != 40 {
			t.Errorf("%s: alarm limits %+v, %v; want high 40", name(i), a.Limits, err)
		}
	}
	wmu.Lock()
	if len(removedFinal) != 50 || !strings.Contains(removedFinal["psu-001"].GetLastError(), "device removed by reload") ||
		removedFinal["psu-001"].GetState() != svv1.DeviceState_DEVICE_STATE_STOPPED || len(watchedReloads) != 1 || watchedReloads[0].GetHash() != r.GetHash() {
		t.Errorf("WatchDevices: %d removed devices' final states (psu-001: %v), reloads %v", len(removedFinal), removedFinal["psu-001"], watchedReloads)
	}
	wmu.Unlock()
}

// lineOf returns the number of the first line of text holding s.
func lineOf(text, s string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

// deviceOf returns the running device process called name.
func deviceOf(t *testing.T, a *app, name string) interface{ Mailbox() *supervisor.Mailbox } {
	t.Helper()
	for _, d := range a.devices.Devices() {
		if d.Name() == name {
			return d
		}
	}
	t.Fatalf("no device %s", name)
	return nil
}

// httpDo sends a request and returns the status and body.
func httpDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReloadTriggersAndArchive runs the switchyard binary on a configuration
// file and changes the file three times, each reload started another way: a
// SIGHUP, `switchyard reload` (the ReloadConfig RPC), and, once the file says
// watch: true, the change itself. Each adds an instrument, which then streams;
// an edit with watch off reloads nothing until asked. QuestDB then holds the
// three reload events (who, when, the configuration's hash, the diff) and the
// audit record of the RPC.
func TestReloadTriggersAndArchive(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	events := ingesttest.Table(t, qdb)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, suffix := range []string{"_alarm_events", "_audit_events"} {
			_, _, _ = ingest.Query(ctx, qdb, `DROP TABLE IF EXISTS "`+table+suffix+`"`)
		}
	})
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 4, Seed: 17})
	dir := t.TempDir()
	path := filepath.Join(dir, "plant.yaml")
	plant := func(n int, watch bool) string {
		var devs []plantDevice
		for _, in := range fleet.Instruments()[:n] {
			devs = append(devs, plantDevice{name: in.Name(), addr: in.Addr()})
		}
		return fmt.Sprintf("questdb: {address: %q, table: %s, events_table: %s}\nwatch: %v\n", qdb, table, events, watch) + plantYAML(devs, "")
	}
	writeFile(t, path, plant(1, false))
	bin := filepath.Join(dir, "switchyard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("switchyard serve: %v", err)
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", log)
		}
	}()
	var addr string
	grpcRE := regexp.MustCompile(`msg="serving API" grpc=(\S+)`)
	eventually.True(t, 60*time.Second, "the server's gRPC address in its log", func() bool {
		log, _ := os.ReadFile(logPath)
		if m := grpcRE.FindSubmatch(log); m != nil {
			addr = string(m[1])
		}
		return addr != ""
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	devs := svv1.NewDeviceServiceClient(conn)
	tel := svv1.NewTelemetryServiceClient(conn)
	streaming := func(n int) {
		t.Helper()
		dev := fleet.Instruments()[n-1].Name()
		eventually.True(t, 30*time.Second, dev+" streaming", func() bool {
			resp, err := tel.GetLatest(context.Background(), &svv1.GetLatestRequest{Selector: &svv1.Selector{Devices: []string{dev}}})
			return err == nil && len(resp.GetSamples()) > 0 && resp.GetSamples()[0].GetQuality() == svv1.Quality_QUALITY_GOOD
		})
		list, err := devs.ListDevices(context.Background(), &svv1.ListDevicesRequest{})
		if err != nil || len(list.GetDevices()) != n {
			t.Fatalf("ListDevices: %d devices, %v; want %d", len(list.GetDevices()), err, n)
		}
	}
	streaming(1)

	// SIGHUP.
	writeFile(t, path, plant(2, false))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	streaming(2)
	// The RPC, through the client verb; watch goes on with this reload.
	writeFile(t, path, plant(3, true))
	var stdout, stderr strings.Builder
	if code := run([]string{"reload", "--addr", addr}, &stdout, &stderr); code != 0 ||
		!regexp.MustCompile(`^applied [0-9a-f]{12}: 1 added, 2 unchanged\nadded  psu-03\n$`).MatchString(stdout.String()) {
		t.Fatalf("switchyard reload: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	streaming(3)
	// The file watch.
	writeFile(t, path, plant(4, true))
	streaming(4)

	stdout.Reset()
	if code := run([]string{"config", "--addr", addr}, &stdout, &stderr); code != 0 ||
		!regexp.MustCompile(`(?m)^file\s+`+regexp.QuoteMeta(path)+`$`).MatchString(stdout.String()) ||
		!regexp.MustCompile(`(?m)^loaded\s+\S+ by file change \(watch\)$`).MatchString(stdout.String()) {
		t.Errorf("switchyard config: exit %d:\n%s%s", code, stdout.String(), stderr.String())
	}

	// The archive: three reload events in order, and the audit of the RPC.
	var rows [][]any
	eventually.True(t, 60*time.Second, "three reload events in QuestDB", func() bool {
		_, rows, err = ingest.Query(context.Background(), qdb, `SELECT ts, message, detail FROM "`+events+`" WHERE source = 'configuration' AND kind = 'reloaded' ORDER BY ts`)
		return err == nil && len(rows) == 3
	})
	for i, want := range []string{`^by SIGHUP \(signal\): applied [0-9a-f]{12}: 1 added, 1 unchanged$`,
		`^by anonymous \(api\): applied [0-9a-f]{12}: 1 added, 2 unchanged$`,
		`^by file change \(watch\): applied [0-9a-f]{12}: 1 added, 3 unchanged$`} {
		msg, _ := rows[i][1].(string)
		detail, _ := rows[i][2].(string)
		if !regexp.MustCompile(want).MatchString(msg) || !regexp.MustCompile(`"hash":"[0-9a-f]{64}"`).MatchString(detail) || !strings.Contains(detail, `"added":["psu-0`) {
			t.Errorf("reload event %d: %q, detail %s", i, msg, detail)
		}
	}
	eventually.True(t, 60*time.Second, "the audit record of ReloadConfig", func() bool {
		n, err := ingest.CountRows(context.Background(), qdb, table+"_audit_events", "rpc = '/switchyard.v1.SystemService/ReloadConfig' AND identity = 'anonymous' AND code = 'OK'")
		return err == nil && n == 1
	})
}
