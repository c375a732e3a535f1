package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

var errArchiveDown = errors.New("archive down (simulated)")

// archiveFake is an archive with DEDUP on (device, channel, seq): it counts
// every write and keeps each sample once.
type archiveFake struct {
	mu     sync.Mutex
	rows   map[string]int // key#seq -> times written
	writes int
	down   bool
	hang   chan struct{} // non-nil: Append blocks until closed or ctx ends
}

func newArchiveFake() *archiveFake { return &archiveFake{rows: map[string]int{}} }

func (f *archiveFake) Append(ctx context.Context, ss []telemetry.Sample) error {
	f.mu.Lock()
	hang, down := f.hang, f.down
	f.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-ctx.Done():
		}
		return errArchiveDown
	}
	if down {
		return errArchiveDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		f.rows[fmt.Sprintf("%s#%d", s.Key(), s.Seq)]++
		f.writes++
	}
	return nil
}

func (f *archiveFake) distinct() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.rows)
}

func (f *archiveFake) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

func runArchiver(t *testing.T, a *Archiver) context.CancelFunc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("archiver: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// publishFleet publishes n samples on each of devs devices (one channel each).
func publishFleet(t *testing.T, p *Publisher, devs, n int) {
	t.Helper()
	for d := 0; d < devs; d++ {
		p.Begin(fmt.Sprintf("dev-%d", d), uint64(100+d))
	}
	for i := 0; i < n; i++ {
		for d := 0; d < devs; d++ {
			p.Publish(smp(fmt.Sprintf("dev-%d", d), "x", float64(i)))
		}
		if i%10 == 9 {
			p.Flush(context.Background())
		}
	}
	p.Flush(context.Background())
}

// Two nodes archive together: every sample is written exactly once.
func TestArchiversShareTheWork(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	archive := newArchiveFake()
	aa := NewArchiver(ca, archive, ArchiverOptions{Batch: 16, Logger: quiet()})
	ab := NewArchiver(cb, archive, ArchiverOptions{Batch: 16, Logger: quiet()})
	runArchiver(t, aa)
	runArchiver(t, ab)
	publishFleet(t, NewPublisher(ca, "a", PublisherOptions{Logger: quiet()}), 5, 200)
	eventually(t, 20*time.Second, "1000 samples archived", func() bool { return archive.distinct() == 1000 })
	if w := archive.total(); w != 1000 {
		t.Errorf("%d writes for 1000 samples: something was archived twice", w)
	}
	if sa, sb := aa.Stats(), ab.Stats(); sa.Samples == 0 || sb.Samples == 0 {
		t.Logf("one archiver did all the work (a %+v, b %+v)", sa, sb)
	}
	lag, err := ca.ArchiverLag(context.Background())
	if err != nil || lag.Pending != 0 || lag.Unacked != 0 {
		t.Errorf("lag %+v, %v: want nothing pending", lag, err)
	}
}

// The archive fails for a while: nothing is acknowledged, nothing lost; once
// it is back every sample is in it.
func TestArchiverRetriesUntilStored(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	archive := newArchiveFake()
	archive.down = true
	a := NewArchiver(c, archive, ArchiverOptions{RetryDelay: 100 * time.Millisecond, Logger: quiet()})
	runArchiver(t, a)
	publishFleet(t, NewPublisher(c, "a", PublisherOptions{Logger: quiet()}), 2, 50)
	eventually(t, 10*time.Second, "the archive refused a batch", func() bool { return a.Stats().Refused >= 2 })
	if lag, _ := c.ArchiverLag(context.Background()); lag.Pending+uint64(lag.Unacked) == 0 {
		t.Errorf("lag %+v while the archive is down: want the samples waiting", lag)
	}
	archive.mu.Lock()
	archive.down = false
	archive.mu.Unlock()
	eventually(t, 10*time.Second, "100 samples archived", func() bool { return archive.distinct() == 100 })
}

// The archiving node dies with a batch taken and not stored: after AckWait the
// other node's archiver gets it. Nothing is lost.
func TestArchiverDeathLosesNothing(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	stuck := newArchiveFake()
	stuck.hang = make(chan struct{})
	good := newArchiveFake()
	opts := ArchiverOptions{AckWait: time.Second, Logger: quiet()}
	stopA := runArchiver(t, NewArchiver(ca, stuck, opts))
	publishFleet(t, NewPublisher(cb, "b", PublisherOptions{Logger: quiet()}), 3, 40)
	eventually(t, 10*time.Second, "a took messages", func() bool {
		lag, err := cb.ArchiverLag(context.Background())
		return err == nil && lag.Unacked > 0
	})
	ca.NC.Close() // a dies holding its messages
	close(stuck.hang)
	stopA()
	runArchiver(t, NewArchiver(cb, good, opts))
	eventually(t, 15*time.Second, "120 samples archived by b", func() bool { return good.distinct() == 120 })
	if stuck.total() != 0 {
		t.Errorf("the stuck archive stored %d samples", stuck.total())
	}
}
