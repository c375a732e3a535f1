package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
)

// RestartProcess of the API's own process (over either port, twice each) leaves
// the server serving on the same ports: every run of the API child builds a fresh
// server, and the request that asked for it does not hold up its own server's
// shutdown. Before, the second Serve failed ("Serve called twice") and the root's
// restart intensity took the whole process down.
func TestRestartProcessAPIKeepsServing(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 5})
	a, stop := startApp(t, demoConfig(fleet))
	grpcAddr, httpAddr := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	grpcSys := svv1.NewSystemServiceClient(conn)
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	connectSys := switchyardv1connect.NewSystemServiceClient(hc, "http://"+httpAddr.String())

	restarts := func() int {
		n, _ := a.root.Snapshot().Find("api")
		return n.Restarts
	}
	for i, via := range []string{"grpc", "connect", "grpc", "connect"} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		before := restarts()
		start := time.Now()
		switch via {
		case "grpc":
			_, err = grpcSys.RestartProcess(ctx, &svv1.RestartProcessRequest{Path: "api"})
		default:
			_, err = connectSys.RestartProcess(ctx, connect.NewRequest(&svv1.RestartProcessRequest{Path: "api"}))
		}
		if err != nil {
			t.Fatalf("restart %d over %s: %v", i, via, err)
		}
		// The answer does not wait for the old server's shutdown timeout (5 s).
		if d := time.Since(start); d > 4*time.Second {
			t.Errorf("restart %d over %s took %v", i, via, d)
		}
		eventually.True(t, 20*time.Second, "api restarted and running", func() bool {
			n, _ := a.root.Snapshot().Find("api")
			return n.State == supervisor.Running && n.Restarts > before
		})
		// Both ports answer again on the same addresses (the clients reconnect).
		eventually.True(t, 20*time.Second, "both ports answer after the restart", func() bool {
			_, gerr := grpcSys.GetSupervisionTree(ctx, &svv1.GetSupervisionTreeRequest{})
			_, cerr := connectSys.GetSupervisionTree(ctx, connect.NewRequest(&svv1.GetSupervisionTreeRequest{}))
			return gerr == nil && cerr == nil
		})
		cancel()
	}
	if st := a.root.Snapshot(); st.State != supervisor.Running {
		t.Fatalf("root %v after restarting the API", st.State)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}
