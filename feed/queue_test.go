package feed_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/feed"
)

// item is a keyed test item: key "a", value 1 prints as a1.
type item struct {
	k string
	v int
}

func (i item) String() string { return fmt.Sprintf("%s%d", i.k, i.v) }

func key(i *item) string { return i.k }

func items(s ...string) []item {
	out := make([]item, len(s))
	for i, x := range s {
		var v int
		fmt.Sscanf(x[1:], "%d", &v)
		out[i] = item{x[:1], v}
	}
	return out
}

func show(is []item) string {
	s := make([]string, len(is))
	for i := range is {
		s[i] = is[i].String()
	}
	return fmt.Sprint(s)
}

func TestPolicies(t *testing.T) {
	cases := []struct {
		name     string
		policy   feed.Policy
		capacity int
		in       []item
		want     string
		dropped  uint64
		squashed uint64
	}{
		{"drop oldest keeps the newest", feed.DropOldest, 3, items("a1", "b1", "c1", "d1", "e1"), "[c1 d1 e1]", 2, 0},
		{"drop oldest under the bound keeps all", feed.DropOldest, 8, items("a1", "b1", "a2"), "[a1 b1 a2]", 0, 0},
		{"squash keeps every item while there is room", feed.Squash, 4, items("a1", "a2", "b1", "a3"), "[a1 a2 b1 a3]", 0, 0},
		// Full at a4: squashed to the latest per key in their order (b1 a3), then a4.
		{"squash when full, in the order of the latest", feed.Squash, 4, items("a1", "b1", "a2", "a3", "a4"), "[b1 a3 a4]", 0, 2},
		{"squash with more keys than room drops the oldest", feed.Squash, 3, items("a1", "b1", "c1", "d1"), "[b1 c1 d1]", 1, 0},
		{"latest per key replaces in place", feed.LatestPerKey, 8, items("a1", "b1", "a2", "c1", "b2", "a3"), "[a3 b2 c1]", 0, 3},
		{"latest per key past the bound drops the oldest key", feed.LatestPerKey, 2, items("a1", "b1", "c1", "b2"), "[b2 c1]", 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := feed.NewKeyed(feed.Options[item]{Policy: tc.policy, Capacity: tc.capacity}, key)
			for _, it := range tc.in {
				if n := q.Offer(it); n != 1 {
					t.Fatalf("Offer(%v) took %d", it, n)
				}
			}
			st := q.Stats()
			got := q.Drain(nil, 0)
			if show(got) != tc.want || st.Dropped != tc.dropped || st.Squashed != tc.squashed || st.Len != len(got) {
				t.Fatalf("queued %s (len %d), dropped %d, squashed %d; want %s, %d, %d",
					show(got), st.Len, st.Dropped, st.Squashed, tc.want, tc.dropped, tc.squashed)
			}
			// Taking empties it; the keys are forgotten with the items.
			q.Offer(tc.in[0])
			if got := q.Drain(nil, 0); show(got) != show(tc.in[:1]) {
				t.Fatalf("after a Drain, queued %s, want %s", show(got), show(tc.in[:1]))
			}
		})
	}
}

// TestRingWraps: many rounds of partial drains keep order across the ring's
// wrap and growth, for every policy that keeps all items while there is room.
func TestRingWraps(t *testing.T) {
	for _, p := range []feed.Policy{feed.DropOldest, feed.Squash, feed.Lossless} {
		q := feed.NewKeyed(feed.Options[item]{Policy: p, Capacity: 1000}, key)
		next, want := 0, 0
		for round := range 50 {
			for range round%7 + 3 {
				q.Offer(item{"k", next})
				next++
			}
			for _, it := range q.Drain(nil, round%5+1) {
				if it.v != want {
					t.Fatalf("%s: took %v, want k%d", p, it, want)
				}
				want++
			}
		}
		for _, it := range q.Drain(nil, 0) {
			if it.v != want {
				t.Fatalf("%s: took %v, want k%d", p, it, want)
			}
			want++
		}
		if want != next {
			t.Fatalf("%s: took %d items, offered %d", p, want, next)
		}
	}
}

func TestLosslessBoundAndBackPressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := feed.New(feed.Options[int]{Policy: feed.Lossless, Capacity: 3})
		if rest := q.TryPush(1, 2, 3, 4, 5); !slices.Equal(rest, []int{4, 5}) {
			t.Fatalf("TryPush past the bound left %v, want [4 5]", rest)
		}
		if st := q.Stats(); st.Len != 3 || st.Refused != 1 || st.Dropped != 0 {
			t.Fatalf("stats %+v, want 3 queued, 1 refused (the first that did not fit), 0 dropped", st)
		}
		// Push waits for room, and goes on where it stopped.
		pushed := make(chan error)
		go func() { pushed <- q.Push(t.Context(), 4, 5, 6) }()
		synctest.Wait()
		select {
		case err := <-pushed:
			t.Fatalf("Push to a full lossless queue returned %v without waiting", err)
		default:
		}
		time.Sleep(time.Second)
		if got := q.Drain(nil, 2); !slices.Equal(got, []int{1, 2}) {
			t.Fatalf("took %v", got)
		}
		synctest.Wait()
		if got := q.Drain(nil, 0); !slices.Equal(got, []int{3, 4, 5}) {
			t.Fatalf("took %v, want [3 4 5] (6 still waiting for room)", got)
		}
		if err := <-pushed; err != nil {
			t.Fatal(err)
		}
		if got := q.Drain(nil, 0); !slices.Equal(got, []int{6}) {
			t.Fatalf("took %v, want [6]", got)
		}
		if st := q.Stats(); st.Waits == 0 || st.Waited < time.Second || st.Dropped != 0 {
			t.Fatalf("stats %+v: want waits counted, at least 1s waited, nothing dropped", st)
		}

		// A full queue: Push ends with the context, or with Close.
		q.Offer(1, 2, 3)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if err := q.Push(ctx, 4); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Push past its deadline = %v", err)
		}
		go func() { pushed <- q.Push(t.Context(), 4) }()
		synctest.Wait()
		q.Close()
		if err := <-pushed; !errors.Is(err, feed.ErrClosed) {
			t.Fatalf("Push to a queue closed while waiting = %v, want ErrClosed", err)
		}
		if got := q.Drain(nil, 0); !slices.Equal(got, []int{1, 2, 3}) {
			t.Fatalf("a closed queue's items: %v, want [1 2 3]", got)
		}
		if n := q.Offer(7); n != 0 || q.Len() != 0 {
			t.Fatalf("a closed queue took %d", n)
		}
	})
}

func TestByteBound(t *testing.T) {
	size := func(s *string) int64 { return int64(len(*s)) }
	q := feed.New(feed.Options[string]{Capacity: 100, MaxBytes: 10, Size: size})
	q.Offer("aaaa", "bbbb", "cccc") // 12 bytes: the oldest goes
	if st := q.Stats(); st.Len != 2 || st.Bytes != 8 || st.Dropped != 1 {
		t.Fatalf("stats %+v, want 2 items, 8 bytes, 1 dropped", st)
	}
	q.Offer("0123456789abcdef") // bigger than the bound: alone
	if got := q.Drain(nil, 0); !slices.Equal(got, []string{"0123456789abcdef"}) {
		t.Fatalf("queued %v", got)
	}
	if st := q.Stats(); st.Bytes != 0 {
		t.Fatalf("%d bytes counted in an empty queue", st.Bytes)
	}
	// DrainBytes stops once it took maxBytes (at least one item), and by count.
	q.Offer("aa", "bbb", "c", "dd")
	if got := q.DrainBytes(nil, 0, 4); !slices.Equal(got, []string{"aa", "bbb"}) {
		t.Fatalf("DrainBytes 4 took %v, want [aa bbb]", got)
	}
	if got := q.DrainBytes(nil, 1, 100); !slices.Equal(got, []string{"c"}) {
		t.Fatalf("DrainBytes max 1 took %v, want [c]", got)
	}
	q.Offer("01234567")
	if got := q.DrainBytes(nil, 0, 1); !slices.Equal(got, []string{"dd"}) || q.Len() != 1 {
		t.Fatalf("DrainBytes 1 took %v (%d left), want [dd], one left", got, q.Len())
	}
	if st := q.Stats(); st.Bytes != 8 {
		t.Fatalf("%d bytes counted, want 8", st.Bytes)
	}
	// Lossless with a byte bound refuses instead.
	l := feed.New(feed.Options[string]{Policy: feed.Lossless, MaxBytes: 10, Size: size})
	if rest := l.TryPush("aaaa", "bbbb", "cccc", "dddd"); len(rest) != 1 { // 12 bytes taken, then refused
		t.Fatalf("lossless with 10 bytes left %v", rest)
	}
	// LatestPerKey replacing an item keeps the byte count right.
	k := feed.NewKeyed(feed.Options[string]{Policy: feed.LatestPerKey, MaxBytes: 100, Size: size}, func(s *string) byte { return (*s)[0] })
	k.Offer("a", "aaaa", "bb")
	if st := k.Stats(); st.Bytes != 6 || st.Len != 2 {
		t.Fatalf("latest per key: %+v, want 6 bytes in 2 items", st)
	}
}

func TestWakeIsCoalesced(t *testing.T) {
	q := feed.New(feed.Options[int]{})
	for i := range 100 {
		q.Offer(i)
	}
	<-q.Ready()
	select {
	case <-q.Ready():
		t.Fatal("100 offers left more than one wake-up")
	default:
	}
	// A partial take leaves a wake-up for the rest.
	q.Drain(nil, 10)
	select {
	case <-q.Ready():
	default:
		t.Fatal("items left and no wake-up")
	}
	q.Drain(nil, 0)
	select {
	case <-q.Ready():
		t.Fatal("an empty queue left a wake-up")
	default:
	}
	q.Close()
	select {
	case <-q.Ready():
	default:
		t.Fatal("Close left no wake-up")
	}
}

func TestStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := 0
		q := feed.NewKeyed(feed.Options[item]{Policy: feed.Squash, Capacity: 2, StallAfter: 10 * time.Second, OnStall: func() { stalled++ }}, key)
		q.Offer(items("a1", "b1", "c1")...) // full: the period starts
		time.Sleep(9 * time.Second)
		q.Drain(nil, 1) // read: the period ends
		q.Offer(items("d1", "e1")...)
		if st := q.Stats(); st.FullFor != 0 || q.Err() != nil {
			t.Fatalf("after a Drain and one overflow: %+v, err %v", st, q.Err())
		}
		time.Sleep(9 * time.Second)
		if st := q.Stats(); st.FullFor != 9*time.Second {
			t.Fatalf("full for %v, want 9s", st.FullFor)
		}
		q.Offer(items("f1")...)
		if q.Err() != nil {
			t.Fatal("ended before StallAfter")
		}
		time.Sleep(time.Second)
		q.Offer(items("g1")...)
		if !errors.Is(q.Err(), feed.ErrStalled) || stalled != 1 {
			t.Fatalf("full and unread for 10s: err %v, OnStall called %d times; want ErrStalled, 1", q.Err(), stalled)
		}
		q.Offer(items("h1")...)
		if stalled != 1 || !q.Stats().Closed {
			t.Fatalf("OnStall called %d times", stalled)
		}
	})
}

func TestNewRefusesKeyedPolicies(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New with Squash did not panic")
		}
	}()
	feed.New(feed.Options[int]{Policy: feed.Squash})
}

func ExampleQueue() {
	device := func(s *string) string { return strings.Fields(*s)[0] }
	q := feed.NewKeyed(feed.Options[string]{Policy: feed.LatestPerKey}, device)
	q.Offer("psu-01 connecting", "psu-02 connected", "psu-01 connected")
	<-q.Ready()
	fmt.Println(q.Drain(nil, 0), "squashed:", q.Squashed())
	// Output: [psu-01 connected psu-02 connected] squashed: 1
}

// TestLosslessConcurrent: producers pushing into a small lossless queue while a
// consumer drains lose nothing, and each producer's items stay in order.
func TestLosslessConcurrent(t *testing.T) {
	const producers, each = 4, 5000
	q := feed.New(feed.Options[[2]int]{Policy: feed.Lossless, Capacity: 16})
	errs := make(chan error, producers)
	for p := range producers {
		go func() {
			for i := range each {
				if err := q.Push(context.Background(), [2]int{p, i}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	next := make([]int, producers)
	got := 0
	var buf [][2]int
	for got < producers*each {
		<-q.Ready()
		buf = q.Drain(buf[:0], 0)
		for _, it := range buf {
			if it[1] != next[it[0]] {
				t.Fatalf("producer %d: got item %d, want %d", it[0], it[1], next[it[0]])
			}
			next[it[0]]++
			got++
		}
		if q.Len() > 16 {
			t.Fatalf("lossless queue holds %d, bound 16", q.Len())
		}
	}
	for range producers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
