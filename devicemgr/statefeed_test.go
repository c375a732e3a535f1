package devicemgr_test

import (
	"fmt"
	"testing"

	"github.com/switchyard/switchyard/devicemgr"
)

// TestStateFeedWatchers: a Watch hands out each device's latest state and
// counts the ones it skipped; a WatchEvery hands out every change in order up
// to its bound and counts the oldest it dropped past it.
func TestStateFeedWatchers(t *testing.T) {
	var f devicemgr.StateFeed
	latest, every, small := f.Watch(), f.WatchEvery(0), f.WatchEvery(2)
	for _, w := range []*devicemgr.StateWatch{latest, every, small} {
		defer w.Close()
	}
	for i, name := range []string{"a", "b", "a", "a"} {
		f.Publish(devicemgr.Info{Name: name, Restarts: i})
	}
	show := func(w *devicemgr.StateWatch) string {
		var got []string
		for _, i := range w.Take() {
			got = append(got, fmt.Sprintf("%s#%d", i.Name, i.Restarts))
		}
		return fmt.Sprintf("%v skipped %d", got, w.Skipped())
	}
	for _, c := range []struct {
		w    *devicemgr.StateWatch
		want string
	}{
		{latest, "[a#3 b#1] skipped 2"},
		{every, "[a#0 b#1 a#2 a#3] skipped 0"},
		{small, "[a#2 a#3] skipped 2"},
	} {
		if got := show(c.w); got != c.want {
			t.Errorf("got %s, want %s", got, c.want)
		}
	}
}
