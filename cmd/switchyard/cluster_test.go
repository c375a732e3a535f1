package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// clusterRig runs nodes of the switchyard binary as separate processes, each
// reaching the embedded NATS server through a proxy of its own (so that the
// test can cut one off), against simulated instruments and the test QuestDB.
type clusterRig struct {
	t      *testing.T
	dir    string
	bin    string
	fleet  *sim.Fleet
	nats   *clustertest.Server
	qdb    string
	table  string
	nodes  map[string]*clusterProc
	view   *cluster.Cluster // the test's own handle on the cluster
	prefix string
}

type clusterProc struct {
	name  string
	cmd   *exec.Cmd
	proxy *clustertest.Proxy
	done  chan error
	conn  *grpc.ClientConn
}

func newClusterRig(t *testing.T, fleet *sim.Fleet, qdb, table string) *clusterRig {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchyard")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := &clusterRig{t: t, dir: dir, bin: bin, fleet: fleet, nats: clustertest.StartServer(t), qdb: qdb, table: table,
		nodes: map[string]*clusterProc{}, prefix: "sy"}
	nc, err := cluster.Connect(cluster.Config{URLs: []string{r.nats.URL()}, Node: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if r.view, err = cluster.Open(context.Background(), nc, r.prefix, cluster.Timing{}, cluster.Retention{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			r.dumpLogs()
		}
	})
	return r
}

func (r *clusterRig) start(name string) *clusterProc {
	t := r.t
	t.Helper()
	p := &clusterProc{name: name, proxy: clustertest.StartProxy(t, r.nats.URL()), done: make(chan error, 1)}
	cfg := demoConfig(r.fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.Table = r.qdb, r.table
	cfg.QuestDB.EventsTable = r.table + "_events"
	cfg.QuestDB.SpoolDir = filepath.Join(r.dir, "spool-"+name)
	cfg.Cluster = &config.Cluster{URLs: []string{p.proxy.URL()}, Node: name, Prefix: r.prefix}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(r.dir, name+".yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(r.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	p.cmd = exec.Command(r.bin, "serve", "--config", path)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.proxy.Restore()
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if p.conn != nil {
			p.conn.Close()
		}
	})
	r.nodes[name] = p
	return p
}

// dial connects to a node at the address it registered in the cluster.
func (r *clusterRig) dial(p *clusterProc) {
	r.t.Helper()
	var addr string
	r.eventually(30*time.Second, "node "+p.name+" registered", func() bool {
		v, err := r.view.View(context.Background())
		if err != nil {
			return false
		}
		for _, n := range v.Nodes {
			if n.Name == p.name {
				addr = n.Address
			}
		}
		return addr != ""
	})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		r.t.Fatal(err)
	}
	p.conn = conn
}

func (r *clusterRig) eventually(bound time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("not within %v: %s", bound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// owners returns each device's owner by the cluster's leases.
func (r *clusterRig) owners() map[string]string { return leaseOwners(r.view) }

// leaseOwners returns each device's owner by the cluster's leases (nil if
// they cannot be read).
func leaseOwners(c *cluster.Cluster) map[string]string {
	v, err := c.View(context.Background())
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, l := range v.Leases {
		out[l.Device] = l.Node
	}
	return out
}

func (r *clusterRig) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(r.dir, "*.log"))
	for _, name := range logs {
		b, _ := os.ReadFile(name)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		r.t.Logf("%s:\n%s", filepath.Base(name), b)
	}
}

// subscription collects a Subscribe stream: samples per channel and device
// updates.
type subscription struct {
	mu      sync.Mutex
	samples map[string][]*pb.Sample // by device/channel
	devices []*pb.Device
	err     error
}

func subscribeAll(t *testing.T, conn *grpc.ClientConn) *subscription {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := pb.NewTelemetryServiceClient(conn).Subscribe(ctx, &pb.SubscribeRequest{DeviceStates: true})
	if err != nil {
		t.Fatal(err)
	}
	s := &subscription{samples: map[string][]*pb.Sample{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			resp, err := stream.Recv()
			if err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				return
			}
			s.mu.Lock()
			for _, smp := range resp.GetSamples() {
				k := smp.GetDevice() + "/" + smp.GetChannel()
				s.samples[k] = append(s.samples[k], smp)
			}
			s.devices = append(s.devices, resp.GetDevices()...)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

// TestClusterFailoverProcesses is issue 19's test with three node processes:
// SIGKILL one under load and its devices are polled by the survivors within
// 5 s; a subscriber on a survivor sees the owner change as device states, each
// channel's seqs once and in order, and a gap no longer than the takeover; a
// command through any node reaches the owner, and one during failover fails
// cleanly with DEVICE_IN_FAILOVER; an acknowledgement and a shelf sent
// through nodes that do not own the alarm's device take effect on the owner
// and survive its death; a node cut off from NATS (black-holed)
// stops its devices before another takes them; the simulator never sees two
// connections to one instrument at once; QuestDB holds every sample exactly
// once.
func TestClusterFailoverProcesses(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 6, Lines: 3, Seed: 19, PushHz: 20})
	r := newClusterRig(t, fleet, qdb, table)
	for _, n := range []string{"n1", "n2", "n3"} {
		r.dial(r.start(n))
	}
	devices := len(fleet.Instruments())
	r.eventually(60*time.Second, "every device owned, three per node, and connected", func() bool {
		own := r.owners()
		count := map[string]int{}
		for _, n := range own {
			count[n]++
		}
		if len(own) != devices || count["n1"] != 3 || count["n2"] != 3 || count["n3"] != 3 {
			return false
		}
		list, err := pb.NewDeviceServiceClient(r.nodes["n2"].conn).ListDevices(context.Background(), &pb.ListDevicesRequest{})
		if err != nil {
			return false
		}
		for _, d := range list.GetDevices() {
			if d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED || d.GetNode() != own[d.GetName()] {
				return false
			}
		}
		return true
	})
	sub := subscribeAll(t, r.nodes["n2"].conn)
	owners := r.owners()
	var victims []string
	for dev, n := range owners {
		if n == "n1" {
			victims = append(victims, dev)
		}
	}
	sort.Strings(victims)

	// A command through n3 reaches n1, the owner.
	var psu string
	for _, dev := range victims {
		if strings.HasPrefix(dev, "psu-") {
			psu = dev
		}
	}
	if psu == "" {
		t.Fatalf("n1 owns no power supply: %v", victims)
	}
	devs := pb.NewDeviceServiceClient(r.nodes["n3"].conn)
	rep, err := devs.SendCommand(context.Background(), identifyReq(psu))
	if err != nil || !strings.Contains(rep.GetReply(), "SIM-PSU") {
		t.Fatalf("identify %s through n3: %v, %v", psu, rep, err)
	}
	// An alarm on n1's supply, raised by a set-point sent through n3,
	// acknowledged through n3 and shelved through n2: both reach n1, the
	// owner that evaluates it.
	setReq := &pb.SendCommandRequest{Device: psu, Command: &pb.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{"25"}}
	if _, err := devs.SendCommand(context.Background(), setReq); err != nil {
		t.Fatalf("set_voltage 25 on %s through n3: %v", psu, err)
	}
	alarms1, alarms3 := pb.NewAlarmServiceClient(r.nodes["n1"].conn), pb.NewAlarmServiceClient(r.nodes["n3"].conn)
	r.eventually(20*time.Second, psu+" voltage in HIHI, as n3 sees it", func() bool {
		got, err := alarms3.GetAlarmLimits(context.Background(), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "voltage"})
		return err == nil && got.GetAlarm().GetCondition() == pb.AlarmCondition_ALARM_CONDITION_HIHI
	})
	if _, err := alarms3.Acknowledge(context.Background(), &pb.AcknowledgeRequest{Device: psu, Channel: "voltage", Who: "ann", Comment: "seen"}); err != nil {
		t.Fatalf("acknowledge through n3: %v", err)
	}
	shelvedUntil := time.Now().Add(time.Hour).UnixNano()
	if _, err := pb.NewAlarmServiceClient(r.nodes["n2"].conn).Shelve(context.Background(),
		&pb.ShelveRequest{Device: psu, Channel: "voltage", UntilNs: shelvedUntil, Who: "bob", Comment: "maintenance"}); err != nil {
		t.Fatalf("shelve through n2: %v", err)
	}
	onOwner, err := alarms1.GetAlarmLimits(context.Background(), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "voltage"})
	if a := onOwner.GetAlarm(); err != nil || a.GetAckedBy() != "ann" || a.GetShelvedBy() != "bob" {
		t.Fatalf("%s's alarm on its owner n1: %v, %v; want acknowledged by ann and shelved by bob", psu, a, err)
	}
	r.eventually(10*time.Second, "the acknowledgement and the shelf saved in the cluster", func() bool {
		saved, err := r.view.Alarms().Load(context.Background(), psu)
		for _, st := range saved {
			if st.Channel == "voltage" {
				return err == nil && st.Acked && st.ShelvedBy == "bob"
			}
		}
		return false
	})
	time.Sleep(2 * time.Second) // load before the failure

	clients := r.nats.NumClients()
	killed := time.Now()
	if err := r.nodes["n1"].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.nodes["n1"].done
	r.nodes["n1"].done <- nil
	// During the failover (once NATS has seen n1's connection close, and before
	// another node owns the device) a command fails cleanly: UNAVAILABLE,
	// DEVICE_IN_FAILOVER.
	r.eventually(5*time.Second, "NATS sees n1's connection closed", func() bool { return r.nats.NumClients() < clients })
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = devs.SendCommand(fctx, identifyReq(psu))
	cancel()
	if st := status.Convert(err); err == nil || st.Code().String() != "Unavailable" || grpcReasonOf(st) != "DEVICE_IN_FAILOVER" {
		t.Errorf("command during failover: %v, want UNAVAILABLE with DEVICE_IN_FAILOVER", err)
	}
	r.eventually(20*time.Second, "n1's devices polled by n2 and n3", func() bool {
		return pollersAfter(sub, victims, killed, "n1")
	})
	takeover := time.Since(killed)
	t.Logf("SIGKILL of n1: its %d devices polled by the survivors after %v", len(victims), takeover.Round(10*time.Millisecond))
	for _, dev := range victims {
		first := firstPollAfter(sub, dev, killed)
		if d := first.Sub(killed); d > 5*time.Second {
			t.Errorf("%s: first poll by a survivor %v after the kill, want within 5s", dev, d)
		}
	}
	// The command through n3 now reaches the new owner.
	r.eventually(10*time.Second, "a command reaches "+psu+"'s new owner", func() bool {
		_, err := devs.SendCommand(context.Background(), identifyReq(psu))
		return err == nil
	})
	// The acknowledgement and the shelf survived n1: the new owner's alarm
	// is the same HIHI, acknowledged by ann and shelved by bob, not raised
	// again.
	newOwner := r.owners()[psu]
	got, err := pb.NewAlarmServiceClient(r.nodes[newOwner].conn).GetAlarmLimits(context.Background(),
		&pb.GetAlarmLimitsRequest{Device: psu, Channel: "voltage"})
	if a := got.GetAlarm(); err != nil || !a.GetAcked() || a.GetAckedBy() != "ann" || a.GetShelvedUntilNs() != shelvedUntil ||
		a.GetShelvedBy() != "bob" || a.GetCondition() != pb.AlarmCondition_ALARM_CONDITION_HIHI {
		t.Errorf("%s's alarm on its new owner %s: %v, %v; want HIHI acknowledged by ann and shelved by bob", psu, newOwner, a, err)
	}

	// n3 is cut off from NATS (not killed): it stops its devices before n2
	// takes them.
	var cut []string
	for dev, n := range r.owners() {
		if n == "n3" {
			cut = append(cut, dev)
		}
	}
	cutAt := time.Now()
	r.nodes["n3"].proxy.Cut()
	r.eventually(20*time.Second, "n3's devices polled by n2", func() bool { return pollersAfter(sub, cut, cutAt, "n3") })
	t.Logf("n3 cut off from NATS: its %d devices polled by n2 after %v", len(cut), time.Since(cutAt).Round(10*time.Millisecond))

	// A node that joins late sees every device's state and owner at once, and
	// gets its share by handoff.
	n4 := r.start("n4")
	r.dial(n4)
	r.eventually(30*time.Second, "n4 shows every device connected on its owner and owns some", func() bool {
		own := r.owners()
		list, err := pb.NewDeviceServiceClient(n4.conn).ListDevices(context.Background(), &pb.ListDevicesRequest{})
		if err != nil {
			return false
		}
		mine := 0
		for _, d := range list.GetDevices() {
			if d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED || d.GetNode() == "" || d.GetNode() != own[d.GetName()] {
				return false
			}
			if d.GetNode() == "n4" {
				mine++
			}
		}
		return mine > 0
	})
	time.Sleep(time.Second)
	for _, in := range fleet.Instruments() {
		if o := in.Overlaps(); len(o) > 0 {
			t.Errorf("two connections at once:\n%s", strings.Join(o, "\n"))
		}
	}

	// The subscriber on n2: each channel's seqs once and in order; owner
	// changes as device states; gaps no longer than the takeover.
	sub.mu.Lock()
	for key, ss := range sub.samples {
		for i := 1; i < len(ss); i++ {
			if ss[i].GetSeq() <= ss[i-1].GetSeq() {
				t.Errorf("%s: seq %d after %d (duplicate or out of order)", key, ss[i].GetSeq(), ss[i-1].GetSeq())
				break
			}
		}
	}
	for _, dev := range victims {
		var newOwner string
		for _, d := range sub.devices {
			if d.GetName() == dev && d.GetNode() != "" && d.GetNode() != "n1" {
				newOwner = d.GetNode()
			}
		}
		if newOwner == "" {
			t.Errorf("%s: the subscriber saw no device state naming its new owner", dev)
		}
		if gap := maxGap(sub.samples, dev, killed); gap > takeover+time.Second {
			t.Errorf("%s: a gap of %v in its samples, longer than the takeover (%v)", dev, gap, takeover)
		}
	}
	sub.mu.Unlock()

	// Stop the nodes; the archive gets the rest from the stream (an archiver
	// of a node started later would, here one in the test), then QuestDB holds
	// each channel's seqs 1..max exactly once.
	r.nodes["n3"].proxy.Restore()
	for _, n := range []string{"n2", "n3", "n4"} {
		_ = r.nodes[n].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range []string{"n2", "n3", "n4"} {
		select {
		case <-r.nodes[n].done:
			r.nodes[n].done <- nil
		case <-time.After(60 * time.Second):
			t.Fatalf("%s did not stop within 60s", n)
		}
	}
	drainArchive(t, r)
	checkArchiveExactlyOnce(t, qdb, table)
}

// pollersAfter reports whether every device has a sample taken after t by a
// node other than gone (its device state says who owns it).
func pollersAfter(sub *subscription, devices []string, t time.Time, gone string) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for _, dev := range devices {
		owner := ""
		for _, d := range sub.devices {
			if d.GetName() == dev {
				owner = d.GetNode()
			}
		}
		if owner == "" || owner == gone || firstPollAfterLocked(sub, dev, t).IsZero() {
			return false
		}
	}
	return true
}

func firstPollAfter(sub *subscription, dev string, t time.Time) time.Time {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return firstPollAfterLocked(sub, dev, t)
}

// firstPollAfterLocked is the time of the device's first good sample taken
// after t.
func firstPollAfterLocked(sub *subscription, dev string, t time.Time) time.Time {
	var first time.Time
	for key, ss := range sub.samples {
		if !strings.HasPrefix(key, dev+"/") {
			continue
		}
		for _, s := range ss {
			ts := time.Unix(0, s.GetTimestampNs())
			if s.GetQuality() == pb.Quality_QUALITY_GOOD && ts.After(t) && (first.IsZero() || ts.Before(first)) {
				first = ts
			}
		}
	}
	return first
}

// maxGap is the longest time between two good samples of any of the device's
// channels, from a little before t on.
func maxGap(samples map[string][]*pb.Sample, dev string, t time.Time) time.Duration {
	var worst time.Duration
	for key, ss := range samples {
		if !strings.HasPrefix(key, dev+"/") {
			continue
		}
		var prev time.Time
		for _, s := range ss {
			ts := time.Unix(0, s.GetTimestampNs())
			if s.GetQuality() != pb.Quality_QUALITY_GOOD || ts.Before(t.Add(-2*time.Second)) {
				continue
			}
			if !prev.IsZero() && ts.Sub(prev) > worst {
				worst = ts.Sub(prev)
			}
			prev = ts
		}
	}
	return worst
}

func grpcReasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok {
			return info.GetReason()
		}
	}
	return ""
}

// drainArchive archives what the stream holds beyond what the nodes' archivers
// took, as a node started later would, until the archiver has nothing left.
func drainArchive(t *testing.T, r *clusterRig) {
	t.Helper()
	hub := telemetry.NewHub(nil)
	qdb, err := questdb.New(r.qdb)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ingest.NewSampleWriter(qdb, hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless}),
		ingest.Options{Table: r.table})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = w.Serve(ctx) }()
	arch := cluster.NewArchiver(r.view, archiveAppender{hub, []archivedWaiter{w}}, cluster.ArchiverOptions{})
	go func() { defer wg.Done(); _ = arch.Serve(ctx) }()
	defer func() {
		cancel()
		wg.Wait()
	}()
	r.eventually(60*time.Second, "the archiver has nothing left", func() bool {
		lag, err := r.view.ArchiverLag(context.Background())
		return err == nil && lag.Pending == 0 && lag.Unacked == 0
	})
}

// checkArchiveExactlyOnce: every channel's rows are seqs 1..max, each once.
func checkArchiveExactlyOnce(t *testing.T, qdb, table string) {
	t.Helper()
	ctx := context.Background()
	var rows [][]any
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		// WAL tables apply rows a moment after they are acknowledged: wait
		// until two reads a second apart agree.
		_, rows, err = ingest.Query(ctx, qdb, fmt.Sprintf(
			`SELECT device, channel, count() n, count_distinct(seq) d, min(seq) lo, max(seq) hi FROM "%s" GROUP BY device, channel ORDER BY device, channel`, table))
		if err == nil {
			time.Sleep(time.Second)
			_, again, err2 := ingest.Query(ctx, qdb, fmt.Sprintf(
				`SELECT device, channel, count() n, count_distinct(seq) d, min(seq) lo, max(seq) hi FROM "%s" GROUP BY device, channel ORDER BY device, channel`, table))
			if err2 == nil && fmt.Sprint(again) == fmt.Sprint(rows) && len(rows) > 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive query: %v", errors.Join(err, errors.New("rows did not settle")))
		}
	}
	total := 0
	for _, row := range rows {
		n, d, lo, hi := fmt.Sprint(row[2]), fmt.Sprint(row[3]), fmt.Sprint(row[4]), fmt.Sprint(row[5])
		if n != d || lo != "1" || n != hi {
			t.Errorf("%v/%v: %s rows, %s distinct seqs, seqs %s..%s: want seqs 1..max each once", row[0], row[1], n, d, lo, hi)
		}
		var k int
		fmt.Sscan(n, &k)
		total += k
	}
	t.Logf("QuestDB: %d channels, %d samples, each seq exactly once", len(rows), total)
}

func identifyReq(dev string) *pb.SendCommandRequest {
	return &pb.SendCommandRequest{Device: dev, Command: &pb.SendCommandRequest_Name{Name: "identify"}}
}
