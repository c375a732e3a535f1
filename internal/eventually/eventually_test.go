package eventually_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/eventually"
)

type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = format
	panic(f)
}

func TestTrueWaitsAndFails(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	eventually.True(t, 0, "three increments", func() bool { return n.Load() == 3 })
	if v := eventually.Value(t, 0, "a value", func() (int32, bool) { return n.Load(), true }); v != 3 {
		t.Fatalf("Value = %d", v)
	}

	ft := &fakeT{TB: t}
	func() {
		defer func() { _ = recover() }()
		eventually.True(ft, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if ft.failed == "" {
		t.Fatal("a condition that never holds did not fail the test")
	}
}
