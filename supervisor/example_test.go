package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// A device process that fails on its first connection attempt is restarted
// after its backoff; the snapshot shows the restart and the last exit.
func Example() {
	var attempts atomic.Int32
	psu := supervisor.ServiceFunc(func(ctx context.Context) error {
		if attempts.Add(1) == 1 {
			return errors.New("dial 10.0.0.7:5025: connection refused")
		}
		<-ctx.Done()
		return ctx.Err()
	})

	sup := supervisor.New("devices", supervisor.Options{Backoff: supervisor.Backoff{Min: time.Millisecond}})
	events := sup.Events(0)
	defer events.Close()
	if err := sup.Add(supervisor.ChildSpec{ID: "psu1", Service: psu}); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- sup.Serve(ctx) }()

	for {
		ev, err := events.Next(ctx)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(strings.TrimSpace(ev.Kind.String() + " " + ev.Child))
		if ev.Kind == supervisor.EventStarted && ev.Restarts == 1 {
			break
		}
	}
	n := sup.Snapshot().Children[0]
	fmt.Printf("%s: %s, restarts %d, last exit %q\n", n.ID, n.State, n.Restarts, n.LastExit)

	cancel()
	fmt.Println("Serve:", <-done)
	fmt.Println(strings.ToUpper(sup.Snapshot().Children[0].State.String()))
	// Output:
	// added psu1
	// starting
	// started psu1
	// exited psu1
	// restart_scheduled psu1
	// started psu1
	// psu1: running, restarts 1, last exit "dial 10.0.0.7:5025: connection refused"
	// Serve: <nil>
	// STOPPED
}
