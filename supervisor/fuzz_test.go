package supervisor_test

import (
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// FuzzSupervisor drives a supervisor with random failures, removals,
// additions and waits, and checks the invariants that matter for hardware:
// never two incarnations of one child at once, nothing left running after
// Serve returns, and Serve ends only normally or by escalation.
func FuzzSupervisor(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 6, 12, 3, 4, 5, 11, 17, 23})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4})
	f.Add([]byte{2, 2, 1, 0, 7, 13, 19, 5, 10, 3, 1, 1, 1, 4})
	f.Add([]byte{0, 0, 0, 0, 1, 7, 13, 19, 3, 3, 3})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) < 4 || len(ops) > 200 {
			t.Skip()
		}
		synctest.Test(t, func(t *testing.T) { fuzzRun(t, ops) })
	})
}

func fuzzRun(t *testing.T, ops []byte) {
	j := &journal{}
	const n = 4
	strategies := []supervisor.Strategy{supervisor.OneForOne, supervisor.OneForAll, supervisor.RestForOne}
	sup := supervisor.New("root", supervisor.Options{
		Strategy:    strategies[int(ops[0])%3],
		MaxRestarts: 5,
		MaxTime:     time.Second,
		Rand:        noJitter,
	})
	workers := make([]*worker, n)
	specs := make([]supervisor.ChildSpec, n)
	for i := range workers {
		id := fmt.Sprintf("w%d", i)
		workers[i] = newWorker(id, j)
		specs[i] = supervisor.ChildSpec{ID: id, Service: workers[i], Restart: supervisor.RestartType(int(ops[1+i%3]) % 3)}
		mustAdd(t, sup, specs[i])
	}
	stop, done := serve(t, sup)
	synctest.Wait()
	for _, op := range ops[4:] {
		select {
		case <-done:
			goto end
		default:
		}
		w := workers[int(op/6)%n]
		switch op % 6 {
		case 0, 1, 2:
			select {
			case w.exit <- []exitKind{exitErr, exitPanic, exitNil}[op%6]:
			default: // not running
			}
		case 3:
			time.Sleep(50 * time.Millisecond)
		case 4:
			time.Sleep(2 * time.Second)
		case 5:
			i := int(op/6) % n
			if err := sup.Remove(specs[i].ID); errors.Is(err, supervisor.ErrNotFound) {
				if err := sup.Add(specs[i]); err != nil && !errors.Is(err, supervisor.ErrDuplicate) {
					t.Fatalf("Add: %v", err)
				}
			} else if err != nil {
				t.Fatalf("Remove: %v", err)
			}
		}
		synctest.Wait()
	}
end:
	if err := stop(); err != nil && !errors.Is(err, supervisor.ErrIntensity) {
		t.Fatalf("Serve: %v", err)
	}
	for _, w := range workers {
		if w.maxRun.Load() > 1 {
			t.Errorf("%s ran %d incarnations at once", w.id, w.maxRun.Load())
		}
		if w.running.Load() != 0 {
			t.Errorf("%s still running after Serve returned", w.id)
		}
	}
	for _, c := range sup.Snapshot().Children {
		if c.State != supervisor.Stopped {
			t.Errorf("%s is %s after Serve returned", c.ID, c.State)
		}
	}
}
