package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// exitKind is how a test worker's incarnation ends.
type exitKind int

const (
	exitNil exitKind = iota
	exitErr
	exitPanic
	exitForeignCancel // returns context.Canceled that is not the supervisor's
)

func (k exitKind) String() string {
	return [...]string{"nil", "error", "panic", "foreign_cancel"}[k]
}

func (k exitKind) abnormal() bool { return k != exitNil }

// journal is an ordered, shared log of what workers did.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
	j.mu.Unlock()
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	l := j.lines
	j.lines = nil
	return l
}

// worker is a test service: each incarnation logs its start, then waits
// for an exit order or its context.
type worker struct {
	id      string
	j       *journal
	exit    chan exitKind
	starts  atomic.Int32
	running atomic.Int32
	maxRun  atomic.Int32
	// ignoreCancel makes it outlive its context until it receives from
	// release (one value releases one incarnation) or release is closed.
	ignoreCancel bool
	release      chan struct{}
}

func newWorker(id string, j *journal) *worker {
	return &worker{id: id, j: j, exit: make(chan exitKind), release: make(chan struct{})}
}

func (w *worker) Serve(ctx context.Context) error { return w.ServeReady(ctx, func() {}) }

// ServeReady logs the start before reporting ready, so the journal shows
// the supervisor's start order.
func (w *worker) ServeReady(ctx context.Context, ready func()) error {
	w.starts.Add(1)
	n := w.running.Add(1)
	defer w.running.Add(-1)
	for {
		m := w.maxRun.Load()
		if n <= m || w.maxRun.CompareAndSwap(m, n) {
			break
		}
	}
	w.j.add("start %s", w.id)
	ready()
	if w.ignoreCancel {
		select {
		case <-w.release:
			w.j.add("released %s", w.id)
			return nil
		case k := <-w.exit:
			return w.exitWith(k)
		}
	}
	select {
	case <-ctx.Done():
		w.j.add("stop %s", w.id)
		return ctx.Err()
	case k := <-w.exit:
		return w.exitWith(k)
	}
}

func (w *worker) exitWith(k exitKind) error {
	w.j.add("exit %s %s", w.id, k)
	switch k {
	case exitErr:
		return errors.New("boom")
	case exitPanic:
		panic("kaboom")
	case exitForeignCancel:
		inner, cancel := context.WithCancel(context.Background())
		cancel()
		return inner.Err()
	}
	return nil
}

// noJitter makes backoff exact.
func noJitter() float64 { return 0 }

// serve runs sup in the background. stop cancels it and returns Serve's
// error; done is closed when Serve returns, and stop then returns at once.
func serve(t *testing.T, sup *supervisor.Supervisor) (stop func() error, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	d := make(chan struct{})
	var err error
	go func() {
		err = sup.Serve(ctx)
		close(d)
	}()
	return func() error {
		cancel()
		<-d
		return err
	}, d
}

func child(t *testing.T, n supervisor.Node, id string) (supervisor.Node, bool) {
	t.Helper()
	i := slices.IndexFunc(n.Children, func(c supervisor.Node) bool { return c.ID == id })
	if i < 0 {
		return supervisor.Node{}, false
	}
	return n.Children[i], true
}

func mustChild(t *testing.T, n supervisor.Node, id string) supervisor.Node {
	t.Helper()
	c, ok := child(t, n, id)
	if !ok {
		t.Fatalf("snapshot has no child %q: %+v", id, n)
	}
	return c
}

func mustAdd(t *testing.T, sup *supervisor.Supervisor, spec supervisor.ChildSpec) {
	t.Helper()
	if err := sup.Add(spec); err != nil {
		t.Fatalf("Add(%q): %v", spec.ID, err)
	}
}

// sleep advances the synctest clock and lets everything settle.
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
