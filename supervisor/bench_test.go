package supervisor_test

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/switchyard/switchyard/supervisor"
)

// BenchmarkMailboxCall measures one call round trip to a process.
func BenchmarkMailboxCall(b *testing.B) {
	mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := mb.Receive(ctx)
			if err != nil {
				return
			}
			_ = m.Reply(m.Body, nil)
		}
	}()
	for b.Loop() {
		if _, err := mb.Call(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
	cancel()
	<-done
}

// BenchmarkRestart measures one failure and restart of a one_for_one child
// with no backoff.
func BenchmarkRestart(b *testing.B) {
	fail := make(chan struct{})
	started := make(chan struct{})
	w := supervisor.ServiceFunc(func(ctx context.Context) error {
		started <- struct{}{}
		select {
		case <-fail:
			return errors.New("fail")
		case <-ctx.Done():
			return nil
		}
	})
	sup := supervisor.New("bench", supervisor.Options{MaxRestarts: 1 << 30, Backoff: supervisor.Backoff{Min: -1}})
	if err := sup.Add(supervisor.ChildSpec{ID: "w", Service: w}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- sup.Serve(ctx) }()
	<-started
	for b.Loop() {
		fail <- struct{}{}
		<-started
	}
	cancel()
	if err := <-errc; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStartStop1000 measures starting and stopping a supervisor of
// 1000 plain children.
func BenchmarkStartStop1000(b *testing.B) {
	idle := supervisor.ServiceFunc(func(ctx context.Context) error { <-ctx.Done(); return nil })
	sup := supervisor.New("devices", supervisor.Options{})
	for i := range 1000 {
		if err := sup.Add(supervisor.ChildSpec{ID: strconv.Itoa(i), Service: idle}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		ready := make(chan struct{})
		go func() { errc <- sup.ServeReady(ctx, func() { close(ready) }) }()
		<-ready
		cancel()
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}
