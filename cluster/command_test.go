package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

var (
	errBadArg  = errors.New("bad command argument")
	errNoAlarm = errors.New("no alarm on that channel")
)

// execFake records what it was asked; "hang" blocks until released.
type execFake struct {
	mu      sync.Mutex
	calls   []string
	callers []Caller
	dls     []time.Time
	release chan struct{}
}

func (e *execFake) Send(ctx context.Context, device string, cmd Command, caller Caller) (Reply, error) {
	dl, _ := ctx.Deadline()
	e.mu.Lock()
	e.calls = append(e.calls, device+" "+cmd.Name)
	e.callers = append(e.callers, caller)
	e.dls = append(e.dls, dl)
	e.mu.Unlock()
	switch cmd.Name {
	case "bad":
		return Reply{}, errBadArg
	case "hang":
		select {
		case <-e.release:
		case <-ctx.Done():
		}
		return Reply{}, ctx.Err()
	}
	return Reply{Text: "OK 24", Values: []telemetry.Value{telemetry.Float(24), telemetry.String("V")}}, nil
}

func (e *execFake) Abort(_ context.Context, device, reason string, caller Caller) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, device+" abort "+reason)
	return "hang", nil
}

// Alarm acts on the alarm of channel "voltage" only; its wire form here is
// the action's JSON with the device.
func (e *execFake) Alarm(ctx context.Context, device string, act AlarmAction, caller Caller) ([]byte, error) {
	dl, _ := ctx.Deadline()
	e.mu.Lock()
	e.calls = append(e.calls, device+" alarm "+string(act.Op))
	e.callers = append(e.callers, caller)
	e.dls = append(e.dls, dl)
	e.mu.Unlock()
	if act.Channel != "voltage" {
		return nil, errNoAlarm
	}
	return json.Marshal(struct {
		Device string
		AlarmAction
	}{device, act})
}

func (e *execFake) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.calls)
}

func classify(err error) (string, string, map[string]string) {
	if errors.Is(err, errBadArg) {
		return "invalid_argument", "BAD_ARGUMENT", map[string]string{"arg": "volts"}
	}
	if errors.Is(err, errNoAlarm) {
		return "not_found", "ALARM_NOT_FOUND", nil
	}
	return "internal", "INTERNAL", nil
}

func TestCommandRoutedToOwner(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	ex := &execFake{release: make(chan struct{})}
	resp := NewResponder(ca, "a", ex, classify, quiet())
	defer resp.Wait()
	router := NewRouter(cb, "b")
	ctx := context.Background()

	// No owner yet: DEVICE_IN_FAILOVER at once, nothing executed.
	_, err := router.Send(ctx, "psu-1", Command{Name: "set"}, Caller{Name: "ann"})
	var fe *FailoverError
	if !errors.As(err, &fe) || fe.ErrorReason() != "DEVICE_IN_FAILOVER" || fe.Device != "psu-1" {
		t.Fatalf("send with no owner: %v, want a FailoverError", err)
	}

	if err := resp.Start(ctx, "psu-1"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	want, _ := cctx.Deadline()
	rep, err := router.Send(cctx, "psu-1", Command{Name: "set", Args: []string{"24"}}, Caller{Name: "ann", Role: "operator"})
	cancel()
	if err != nil || rep.Text != "OK 24" || len(rep.Values) != 2 || rep.Values[0] != telemetry.Float(24) {
		t.Fatalf("send: %+v, %v", rep, err)
	}
	ex.mu.Lock()
	if c := ex.callers[0]; c.Name != "ann" || c.Role != "operator" || c.Node != "b" {
		t.Errorf("owner saw caller %+v, want ann/operator through b", c)
	}
	if !ex.dls[0].Equal(want) {
		t.Errorf("owner's deadline %v, want the caller's %v", ex.dls[0], want)
	}
	ex.mu.Unlock()

	// The owner's error comes back with its reason, metadata and node.
	_, err = router.Send(ctx, "psu-1", Command{Name: "bad"}, Caller{})
	var re *RemoteError
	if !errors.As(err, &re) || re.ErrorReason() != "BAD_ARGUMENT" || re.ErrorCode() != "invalid_argument" || re.ErrorMetadata()["arg"] != "volts" || re.ErrorMetadata()["node"] != "a" {
		t.Errorf("send bad: %#v, want BAD_ARGUMENT from a", err)
	}

	// An abort reaches the owner with its reason.
	if got, err := router.Abort(ctx, "psu-1", "stop now", Caller{}); err != nil || got != "hang" {
		t.Errorf("abort: %q, %v", got, err)
	}

	// Handed over: the old owner no longer answers.
	resp.Stop("psu-1")
	if err := resp.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := router.Send(ctx, "psu-1", Command{Name: "set"}, Caller{}); !errors.As(err, &fe) {
		t.Errorf("send after the owner stopped answering: %v, want a FailoverError", err)
	}
	if n := ex.count(); n != 3 {
		t.Errorf("%d executions, want 3 (set, bad, abort)", n)
	}
}

// The owner dies with the command in progress: the caller gets an answer at
// its deadline that says the command may have run, and it is not sent again.
func TestCommandOwnerDiesMidCommand(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	ex := &execFake{release: make(chan struct{})}
	resp := NewResponder(ca, "a", ex, classify, quiet())
	if err := resp.Start(context.Background(), "d"); err != nil {
		t.Fatal(err)
	}
	router := NewRouter(cb, "b")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		_, err := router.Send(ctx, "d", Command{Name: "hang"}, Caller{})
		done <- err
	}()
	eventually(t, 5*time.Second, "the owner took the command", func() bool { return ex.count() == 1 })
	ca.NC.Close() // the owner is gone
	err := <-done
	var na *NoAnswerError
	if !errors.As(err, &na) || na.ErrorReason() != "DEADLINE_EXCEEDED" {
		t.Errorf("send to a dying owner: %v, want a NoAnswerError", err)
	}
	close(ex.release)
	resp.Wait()
	if n := ex.count(); n != 1 {
		t.Errorf("%d executions, want 1", n)
	}
}

// A node cut off from NATS keeps its interest on the server for a while; it
// must not swallow the commands meant for the device's new owner, and what
// reaches it once it is back is not executed (it stopped answering).
func TestCommandSkipsCutOffNode(t *testing.T) {
	srv := clustertest.StartServer(t)
	proxy := clustertest.StartProxy(t, srv.URL())
	ca, cb, cc := openTest(t, proxy.URL(), "a"), openTest(t, srv.URL(), "b"), openTest(t, srv.URL(), "c")
	exA, exB := &execFake{}, &execFake{}
	ra, rb := NewResponder(ca, "a", exA, classify, quiet()), NewResponder(cb, "b", exB, classify, quiet())
	defer ra.Wait()
	defer rb.Wait()
	ctx := context.Background()
	if err := ra.Start(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	ra.Stop("d") // a fenced itself; its unsubscribe cannot reach the server
	if err := rb.Start(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	router := NewRouter(cc, "c")
	for i := 0; i < 10; i++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := router.Send(cctx, "d", Command{Name: "set"}, Caller{})
		cancel()
		if err != nil {
			t.Fatalf("command %d: %v", i, err)
		}
	}
	proxy.Restore()
	if err := ra.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a, b := exA.count(), exB.count(); a != 0 || b != 10 {
		t.Errorf("10 commands ran %d times on the cut-off a and %d times on b; want 0 and 10", a, b)
	}
}

// An alarm action reaches the owner of its device with the caller's deadline
// and identity, and comes back with the owner's answer; with no owner it
// fails at once with DEVICE_IN_FAILOVER, and the owner's error comes back
// with its reason.
func TestAlarmActionRoutedToOwner(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	ex := &execFake{}
	resp := NewResponder(ca, "a", ex, classify, quiet())
	defer resp.Wait()
	router := NewRouter(cb, "b")
	ctx := context.Background()
	ack := AlarmAction{Op: AlarmAck, Channel: "voltage", Who: "ann", Comment: "seen"}

	var fe *FailoverError
	if _, err := router.Alarm(ctx, "psu-1", ack, Caller{Name: "ann"}); !errors.As(err, &fe) || fe.Device != "psu-1" {
		t.Fatalf("alarm action with no owner: %v, want a FailoverError", err)
	}
	if err := resp.Start(ctx, "psu-1"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	want, _ := cctx.Deadline()
	got, err := router.Alarm(cctx, "psu-1", ack, Caller{Name: "ann", Role: "operator"})
	cancel()
	if err != nil || string(got) != `{"Device":"psu-1","op":"ack","channel":"voltage","who":"ann","comment":"seen"}` {
		t.Fatalf("routed acknowledgement: %s, %v", got, err)
	}
	shelve := AlarmAction{Op: AlarmShelve, Channel: "current", Who: "bob", UntilNs: 42}
	var re *RemoteError
	if _, err := router.Alarm(ctx, "psu-1", shelve, Caller{Name: "bob"}); !errors.As(err, &re) || re.ErrorReason() != "ALARM_NOT_FOUND" || re.ErrorCode() != "not_found" {
		t.Errorf("routed shelve of a channel without an alarm: %v, want ALARM_NOT_FOUND from the owner", err)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if fmt.Sprint(ex.calls) != "[psu-1 alarm ack psu-1 alarm shelve]" {
		t.Errorf("the owner ran %v", ex.calls)
	}
	if c := ex.callers[0]; c.Name != "ann" || c.Role != "operator" || c.Node != "b" || !ex.dls[0].Equal(want) {
		t.Errorf("the owner saw caller %+v with deadline %v, want ann/operator through b with %v", c, ex.dls[0], want)
	}
}
