package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/switchyard/switchyard/cluster/natsserver"
	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// clusterScenario polls ClusterDevices × Channels at Rate with one server, then
// with three nodes of a cluster over a NATS JetStream server embedded in the
// harness, and compares what they poll (samples the nodes' hubs published per
// second) and what it costs (the node processes' CPU per sample, the stream and
// the mirroring of every device to every node included; NATS's own CPU is the
// harness's and not counted). Then it kills one node with SIGKILL and measures
// the failover: the time until every device is connected again, on the
// survivors, as ListDevices on a survivor shows it.
func (r *Runner) clusterScenario(ctx context.Context) ([]Result, error) {
	o := r.opts
	period := time.Duration(float64(time.Second) / o.Rate)
	sim, err := r.startSim(ctx, o.ClusterDevices, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	chans := pollChannels(o.Channels, period)
	label := fmt.Sprintf("%d×%d@%gHz", o.ClusterDevices, o.Channels, o.Rate)

	cfg, err := serverConfig(sim.instruments, chans, "", "")
	if err != nil {
		return nil, err
	}
	single, err := r.startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	one, err := r.measureNodes(ctx, "cluster 1 node", []*serverProc{single})
	_ = single.stop(60 * time.Second)
	if err != nil {
		return nil, err
	}
	one.Scenario, one.Case = "cluster", "1 node "+label

	dir, err := os.MkdirTemp(r.dir, "nats-")
	if err != nil {
		return nil, err
	}
	ns, err := natsserver.Start(dir, "127.0.0.1", -1)
	if err != nil {
		return nil, err
	}
	defer ns.Shutdown()
	var nodes []*serverProc
	defer func() {
		for _, n := range nodes {
			_ = n.stop(60 * time.Second)
		}
	}()
	for k := 1; k <= 3; k++ {
		cfg, err := serverConfig(sim.instruments, chans, "", "")
		if err != nil {
			return nil, err
		}
		cfg.Cluster = &config.Cluster{URLs: []string{ns.URL()}, Node: fmt.Sprintf("n%d", k), Prefix: "bench"}
		n, err := r.startServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if err := r.waitBalanced(ctx, nodes[1], 3); err != nil {
		return nil, err
	}
	three, err := r.measureNodes(ctx, "cluster 3 nodes", nodes)
	if err != nil {
		return nil, err
	}
	three.Scenario, three.Case = "cluster", "3 nodes "+label
	if one.CPUPerSample > 0 {
		three.Note = fmt.Sprintf("cpu %.2f× one node (stream, mirrors and leases included)", float64(three.CPUPerSample)/float64(one.CPUPerSample))
	}

	fail, err := r.failover(ctx, nodes)
	if err != nil {
		return []Result{one, three}, err
	}
	return []Result{one, three, fail}, nil
}

// measureNodes measures one window over the given server processes: samples
// their hubs published per second, and their CPU per sample.
func (r *Runner) measureNodes(ctx context.Context, label string, nodes []*serverProc) (Result, error) {
	if err := sleep(ctx, r.opts.Warmup); err != nil {
		return Result{}, err
	}
	count := func() (float64, time.Duration, error) {
		var samples float64
		var cpu time.Duration
		for _, n := range nodes {
			m, err := scrape(ctx, n.http)
			if err != nil {
				return 0, 0, err
			}
			st, err := ReadProcStat(n.pid())
			if err != nil {
				return 0, 0, err
			}
			samples += m["switchyard_hub_published_samples_total"]
			cpu += st.CPU
		}
		return samples, cpu, nil
	}
	s0, c0, err := count()
	if err != nil {
		return Result{}, err
	}
	from := time.Now()
	r.progress("%s: measuring for %v", label, r.opts.Duration)
	if err := sleep(ctx, r.opts.Duration); err != nil {
		return Result{}, err
	}
	s1, c1, err := count()
	if err != nil {
		return Result{}, err
	}
	secs := time.Since(from).Seconds()
	res := newResult("cluster", label)
	res.Rate = (s1 - s0) / secs
	res.Produced = int64(s1 - s0)
	if s1 > s0 {
		res.CPUPerSample = time.Duration(float64(c1-c0) / (s1 - s0))
	}
	for _, n := range nodes {
		if st, err := ReadProcStat(n.pid()); err == nil && st.PeakRSS > res.PeakRSS {
			res.PeakRSS = st.PeakRSS
		}
	}
	return res, nil
}

// waitBalanced waits until every device is connected and each of n nodes owns
// its share (within one), as ListDevices on via shows.
func (r *Runner) waitBalanced(ctx context.Context, via *serverProc, n int) error {
	conn, err := dial(via.grpc)
	if err != nil {
		return err
	}
	defer conn.Close()
	devices := pb.NewDeviceServiceClient(conn)
	return waitFor(ctx, 120*time.Second, "the devices to spread over the nodes", func() error {
		resp, err := devices.ListDevices(ctx, &pb.ListDevicesRequest{})
		if err != nil {
			return err
		}
		per := map[string]int{}
		for _, d := range resp.GetDevices() {
			if d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED {
				return fmt.Errorf("%s is %s", d.GetName(), d.GetState())
			}
			per[d.GetNode()]++
		}
		lo, hi := len(resp.GetDevices()), 0
		for _, c := range per {
			lo, hi = min(lo, c), max(hi, c)
		}
		if len(per) != n || hi-lo > 1 {
			return fmt.Errorf("devices per node %v", per)
		}
		return nil
	})
}

// failover kills the first node with SIGKILL and measures the time until every
// device is connected on a survivor.
func (r *Runner) failover(ctx context.Context, nodes []*serverProc) (Result, error) {
	conn, err := dial(nodes[1].grpc)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	devices := pb.NewDeviceServiceClient(conn)
	resp, err := devices.ListDevices(ctx, &pb.ListDevicesRequest{})
	if err != nil {
		return Result{}, err
	}
	victim := map[string]bool{}
	for _, d := range resp.GetDevices() {
		if d.GetNode() == "n1" {
			victim[d.GetName()] = true
		}
	}
	r.progress("cluster: SIGKILL of n1 (%d devices)", len(victim))
	killed := time.Now()
	_ = nodes[0].cmd.Process.Kill()
	var took time.Duration
	err = waitFor(ctx, 60*time.Second, "n1's devices to be connected on the survivors", func() error {
		resp, err := devices.ListDevices(ctx, &pb.ListDevicesRequest{})
		if err != nil {
			return err
		}
		for _, d := range resp.GetDevices() {
			if d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED || d.GetNode() == "n1" {
				return fmt.Errorf("%s is %s on %q", d.GetName(), d.GetState(), d.GetNode())
			}
		}
		took = time.Since(killed)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	res := newResult("cluster", "failover after SIGKILL")
	res.Max = took
	res.Note = fmt.Sprintf("%d devices of the killed node connected on the survivors %.2f s after the kill (ListDevices polled every 50 ms); max_ms is that time", len(victim), took.Seconds())
	return res, nil
}
