package alarm_test

import (
	"testing"

	"github.com/switchyard/switchyard/alarm"
)

// Watchers fed from outside an engine (a cluster node's view of every
// owner's transitions): each watch gets what its filter selects, in order;
// a full queue drops the oldest, counted; a closed watch gets nothing more.
func TestWatchersOutsideAnEngine(t *testing.T) {
	ws := alarm.NewWatchers(2)
	all := ws.Watch(nil)
	psu := ws.Watch(func(t *alarm.Transition) bool { return t.Alarm.Device == "psu" })
	defer psu.Close()
	for _, dev := range []string{"psu", "tc", "psu"} {
		ws.Offer(&alarm.Transition{Event: alarm.Raised, Alarm: alarm.Alarm{Device: dev, Channel: "v"}})
	}
	<-psu.Ready()
	if got := psu.Take(); len(got) != 2 || got[0].Alarm.Device != "psu" || got[1].Alarm.Device != "psu" || psu.Dropped() != 0 {
		t.Errorf("filtered watch: %+v, dropped %d; want psu's two", got, psu.Dropped())
	}
	if got := all.Take(); len(got) != 2 || got[0].Alarm.Device != "tc" || all.Dropped() != 1 {
		t.Errorf("watch of 2: %+v, dropped %d; want the last two, the first dropped", got, all.Dropped())
	}
	all.Close()
	ws.Offer(&alarm.Transition{Event: alarm.Cleared, Alarm: alarm.Alarm{Device: "tc"}})
	if got := all.Take(); len(got) != 0 {
		t.Errorf("a closed watch got %+v", got)
	}
}
