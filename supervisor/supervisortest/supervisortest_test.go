package supervisortest_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/supervisor/supervisortest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServeAndWaitEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fails := 0
		svc := supervisor.ServiceFunc(func(ctx context.Context) error {
			if fails < 1 {
				fails++
				return errors.New("refused")
			}
			<-ctx.Done()
			return nil
		})
		sup := supervisor.New("devices", supervisor.Options{})
		if err := sup.Add(supervisor.ChildSpec{ID: "psu1", Service: svc}); err != nil {
			t.Fatal(err)
		}
		sub := sup.Events(0)
		defer sub.Close()
		stop := supervisortest.Serve(t, sup)
		ev := supervisortest.WaitEvent(t, sub, time.Second, func(ev supervisor.Event) bool {
			return ev.Kind == supervisor.EventStarted && ev.Restarts == 1
		})
		if ev.Child != "psu1" {
			t.Errorf("event %+v", ev)
		}
		n, ok := sup.Snapshot().Find("psu1")
		if !ok || n.State != supervisor.Running {
			t.Errorf("psu1 %+v", n)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		supervisortest.WaitEvent(t, sub, time.Second, supervisortest.Child(supervisor.EventStopped, "psu1"))
	})
}
