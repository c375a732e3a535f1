package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// localCluster runs cluster nodes as apps in the test's process (faster to
// start than processes, and the test can reach into them), on one embedded
// NATS server, against simulated instruments.
type localCluster struct {
	t      *testing.T
	fleet  *sim.Fleet
	nats   *clustertest.Server
	view   *cluster.Cluster // the test's own handle on the cluster
	prefix string
	// Set before starting nodes: QuestDB's address ("" for none) and table,
	// and the cluster section's retention.
	qdb, table string
	retention  time.Duration
	// configure, if set, changes each node's configuration (auth:, ...);
	// token is the test's own, with auth on.
	configure func(*config.Config)
	token     string
}

type localNode struct {
	name string
	a    *app
	conn *grpc.ClientConn
	stop func() error
	log  string // its log file
}

func newLocalCluster(t *testing.T, fleet *sim.Fleet, retention time.Duration) *localCluster {
	t.Helper()
	lc := &localCluster{t: t, fleet: fleet, nats: clustertest.StartServer(t), prefix: "lc", retention: retention}
	nc, err := cluster.Connect(cluster.Config{URLs: []string{lc.nats.URL()}, Node: "test"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	// The same retention as the nodes': opening updates the stream.
	if lc.view, err = cluster.Open(context.Background(), nc, lc.prefix, cluster.Timing{}, cluster.Retention{MaxAge: retention}); err != nil {
		t.Fatal(err)
	}
	return lc
}

// start starts a node that may own the devices mayOwn selects (none: all).
func (lc *localCluster) start(name string, mayOwn ...map[string]string) *localNode {
	t := lc.t
	t.Helper()
	cfg := demoConfig(lc.fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address, cfg.QuestDB.Table = lc.qdb, lc.table
	if lc.table != "" {
		cfg.QuestDB.EventsTable = lc.table + "_events"
	}
	cfg.Cluster = &config.Cluster{URLs: []string{lc.nats.URL()}, Node: name, Prefix: lc.prefix, MayOwn: mayOwn,
		RetentionMaxAge: config.Duration(lc.retention)}
	if lc.configure != nil {
		lc.configure(cfg)
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s's log:\n%s", name, b)
		}
	})
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(logf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	n := &localNode{name: name, a: a, stop: serveApp(t, a), log: logPath}
	g, _ := a.Addrs()
	if n.conn, err = grpc.NewClient(g.String(), grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })
	return n
}

// owners returns each device's owner by the cluster's leases.
func (lc *localCluster) owners() map[string]string { return leaseOwners(lc.view) }

// waitOwned waits until owner owns every device and viewer shows them all
// connected on it.
func (lc *localCluster) waitOwned(owner, viewer *localNode) {
	lc.t.Helper()
	devices := len(lc.fleet.Instruments())
	eventually.True(lc.t, 30*time.Second, "every device owned by "+owner.name+" and connected, as "+viewer.name+" shows", func() bool {
		own := lc.owners()
		if len(own) != devices {
			return false
		}
		ctx := context.Background()
		if lc.token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+lc.token)
		}
		list, err := pb.NewDeviceServiceClient(viewer.conn).ListDevices(ctx, &pb.ListDevicesRequest{})
		if err != nil {
			return false
		}
		for _, d := range list.GetDevices() {
			if own[d.GetName()] != owner.name || d.GetNode() != owner.name || d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED {
				return false
			}
		}
		return true
	})
}

// nowhere is a may_own selector no device matches (the demo's tags are area=demo).
var nowhere = map[string]string{"area": "nowhere"}

// replayed is what a Subscribe with since_ns gave, by channel.
type replayed map[string][]*pb.Sample

// subscribeSince subscribes through n to device from sinceNs on and collects
// until a sample of every channel taken after until has come.
func subscribeSince(t *testing.T, n *localNode, device string, sinceNs int64, until time.Time) replayed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := pb.NewTelemetryServiceClient(n.conn).Subscribe(ctx, &pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{device}, Channels: []string{"voltage", "current"}}, SinceNs: sinceNs})
	if err != nil {
		t.Fatal(err)
	}
	got := replayed{}
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("Subscribe since %s through %s: %v (after %d channels)", time.Unix(0, sinceNs).Format(time.TimeOnly), n.name, err, len(got))
		}
		for _, s := range resp.GetSamples() {
			got[s.GetChannel()] = append(got[s.GetChannel()], s)
		}
		if resp.GetDropped() > 0 {
			t.Fatalf("the replay dropped %d samples", resp.GetDropped())
		}
		done := len(got) == 2
		for _, ss := range got {
			done = done && time.Unix(0, ss[len(ss)-1].GetTimestampNs()).After(until)
		}
		if done {
			return got
		}
	}
}

// check: each channel's samples come once and in order with no gap, the
// first taken at or after sinceNs; it returns each channel's first sample.
func (r replayed) check(t *testing.T, what string, sinceNs int64) map[string]*pb.Sample {
	t.Helper()
	first := map[string]*pb.Sample{}
	for ch, ss := range r {
		first[ch] = ss[0]
		if ss[0].GetTimestampNs() < sinceNs {
			t.Errorf("%s: %s's first sample (seq %d) taken %v before since_ns", what, ch, ss[0].GetSeq(),
				time.Duration(sinceNs-ss[0].GetTimestampNs()))
		}
		for i := 1; i < len(ss); i++ {
			if ss[i].GetSeq() != ss[i-1].GetSeq()+1 {
				t.Errorf("%s: %s: seq %d after %d (a gap or a repeat), taken %s", what, ch, ss[i].GetSeq(), ss[i-1].GetSeq(),
					time.Unix(0, ss[i].GetTimestampNs()).Format(time.StampMilli))
				break
			}
		}
	}
	return first
}

// TestClusterReplayFromStreamAndArchive: a Subscribe with since_ns on a node
// that owns nothing replays from the cluster's stream, so that while the
// archive lags (QuestDB unreachable) it still gives every sample once, from
// since_ns into the live ones; and for what is older than the stream keeps it
// falls back to QuestDB, joined to the stream without gap or repeat.
func TestClusterReplayFromStreamAndArchive(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 23})
	proxy := ingesttest.NewProxy(t, qdb)
	const retention = 8 * time.Second // beyond the replay's 5s of clock slack
	lc := newLocalCluster(t, fleet, retention)
	lc.qdb, lc.table = proxy.Addr(), ingesttest.Table(t, qdb)
	start := time.Now()
	owner := lc.start("a")
	viewer := lc.start("b", nowhere)
	lc.waitOwned(owner, viewer)
	psu := fleet.Instruments()[0].Name()

	// The stream has dropped the first samples (past its max age); the
	// archive holds them.
	var last string
	eventually.Truef(t, 30*time.Second, func() string {
		return "the stream's oldest samples expired, all archived; last view: " + last
	}, func() bool {
		v, err := lc.view.View(context.Background())
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("stream first %v after start, archiver err %q, pending %d, unacked %d",
			v.Stream.First.Sub(start).Round(time.Millisecond), v.ArchiverErr, v.Archiver.Pending, v.Archiver.Unacked)
		return v.Stream.First.After(start.Add(2*time.Second)) && v.ArchiverErr == "" &&
			v.Archiver.Pending == 0 && v.Archiver.Unacked == 0
	})

	// QuestDB becomes unreachable: the archive lags behind the stream.
	proxy.Set(ingesttest.Unavailable)
	cut := time.Now()
	eventually.True(t, 30*time.Second, "the archive lags", func() bool {
		lag, err := lc.view.ArchiverLag(context.Background())
		return err == nil && lag.Pending+uint64(lag.Unacked) > 0 && time.Since(cut) > 4*time.Second
	})
	// A replay from 3s ago (within the stream) on the node that does not own
	// the supply: every sample once, into the live ones, most of them
	// nowhere but in the stream.
	since := time.Now().Add(-3 * time.Second)
	got := subscribeSince(t, viewer, psu, since.UnixNano(), time.Now().Add(500*time.Millisecond))
	first := got.check(t, "replay during the archive outage", since.UnixNano())
	for ch, s := range first {
		// The poll before it was taken before since_ns: nothing was left out.
		if ts := time.Unix(0, s.GetTimestampNs()); ts.Sub(since) > time.Second {
			t.Errorf("replay during the archive outage: %s starts %v after since_ns, want its first poll after it", ch, ts.Sub(since))
		}
		if n := len(got[ch]); n < 20 {
			t.Errorf("replay during the archive outage: %s: %d samples, want 3s and more of 100ms polls", ch, n)
		}
	}

	// QuestDB is back; a replay from before the stream's oldest sample
	// starts in QuestDB at each channel's seq 1 and goes on in the stream.
	proxy.Set(ingesttest.Up)
	got = subscribeSince(t, viewer, psu, start.UnixNano(), time.Now().Add(500*time.Millisecond))
	first = got.check(t, "replay from before the stream", start.UnixNano())
	v, err := lc.view.View(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for ch, s := range first {
		if s.GetSeq() != 1 {
			t.Errorf("replay from before the stream: %s starts at seq %d, want 1", ch, s.GetSeq())
		}
		if oldest := time.Unix(0, s.GetTimestampNs()); !v.Stream.First.After(oldest.Add(time.Second)) {
			t.Errorf("the stream's first message (%s) is not past %s's seq 1 (%s): the archive was not needed",
				v.Stream.First.Format(time.StampMilli), ch, oldest.Format(time.StampMilli))
		}
		lines = append(lines, fmt.Sprintf("%s seq 1..%d", ch, got[ch][len(got[ch])-1].GetSeq()))
	}
	sort.Strings(lines)
	t.Logf("replay from the start: %v; the stream keeps from %s", lines, v.Stream.First.Sub(start).Round(time.Millisecond))
}
