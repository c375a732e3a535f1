package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/cluster/natsserver"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/sim"
)

// clusterDemo runs the demo as a cluster: an embedded NATS server with
// JetStream, the simulated fleet and n node processes of this binary
// (`switchyard serve`), each with a configuration of its own under dir (the
// same devices and cluster, its own listen ports and spool). Node k serves
// gRPC on grpcBase+k-1 and HTTP on httpBase+k-1. A node that dies stays dead
// (its devices move to the others); Ctrl-C stops the nodes, then NATS and the
// instruments.
type clusterDemo struct {
	n                  int
	dir                string
	grpcHost           string
	grpcBase, httpBase int
	questdb, spool     string
	layout             string // questdb.layout
	stdout             io.Writer
	log                *slog.Logger
}

func (d *clusterDemo) run(ctx context.Context, fleet *sim.Fleet, control string) error {
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		fleet.Close()
		return err
	}
	ns, err := natsserver.Start(filepath.Join(d.dir, "nats"), "127.0.0.1", -1)
	if err != nil {
		fleet.Close()
		return err
	}
	defer ns.Shutdown()
	simCtx, stopSim := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var simErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		simErr = runFleet(simCtx, fleet, control, d.log)
	}()
	defer func() {
		stopSim()
		wg.Wait()
	}()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.stdout, "switchyard demo --cluster %d: NATS JetStream at %s (store %s); %d simulated instruments; sim control on %s\n",
		d.n, ns.URL(), filepath.Join(d.dir, "nats"), len(fleet.Instruments()), control)
	var procs []*exec.Cmd
	exited := make(chan string, d.n)
	for k := 1; k <= d.n; k++ {
		name := fmt.Sprintf("n%d", k)
		cfg := demoConfig(fleet)
		cfg.Listen.GRPC = fmt.Sprintf("%s:%d", d.grpcHost, d.grpcBase+k-1)
		cfg.Listen.HTTP = fmt.Sprintf("%s:%d", d.grpcHost, d.httpBase+k-1)
		cfg.QuestDB.Address = d.questdb
		cfg.QuestDB.Layout = d.layout
		if d.spool != "" {
			cfg.QuestDB.SpoolDir = filepath.Join(d.spool, name)
		}
		cfg.Cluster = &config.Cluster{URLs: []string{ns.URL()}, Node: name}
		path := filepath.Join(d.dir, name+".yaml")
		data, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
		logf, err := os.Create(filepath.Join(d.dir, name+".log"))
		if err != nil {
			return err
		}
		defer logf.Close()
		cmd := exec.Command(exe, "serve", "--config", path)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start node %s: %w", name, err)
		}
		procs = append(procs, cmd)
		fmt.Fprintf(d.stdout, "  node %s: pid %d, gRPC %s, HTTP %s, log %s\n", name, cmd.Process.Pid, cfg.Listen.GRPC, cfg.Listen.HTTP, logf.Name())
		go func() {
			err := cmd.Wait()
			exited <- fmt.Sprintf("node %s (pid %d) exited: %v", name, cmd.Process.Pid, err)
		}()
	}
	fmt.Fprintln(d.stdout, "Kill a node (kill -9 PID) and watch its devices move: switchyard tree / switchyard devices / GetClusterView.")
	running := d.n
	for running > 0 {
		select {
		case msg := <-exited:
			running--
			fmt.Fprintln(d.stdout, msg)
			continue
		case <-ctx.Done():
		}
		break
	}
	// Stop: SIGTERM every node still running, wait, then kill what is left.
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.After(30 * time.Second)
	for running > 0 {
		select {
		case msg := <-exited:
			running--
			fmt.Fprintln(d.stdout, msg)
		case <-deadline:
			for _, p := range procs {
				_ = p.Process.Kill()
			}
			deadline = nil
		}
	}
	stopSim()
	wg.Wait()
	if simErr != nil && !errors.Is(simErr, context.Canceled) {
		return simErr
	}
	return nil
}
