package supervisor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestControlOvertakesFullMailbox: with the ordinary lane full, control
// messages are still accepted and received first; each lane stays FIFO.
func TestControlOvertakesFullMailbox(t *testing.T) {
	mb := supervisor.NewMailbox(supervisor.MailboxOptions{Name: "psu1", Capacity: 3, ControlCapacity: 2})
	for i := range 3 {
		if err := mb.Cast(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := mb.Cast(3); !errors.Is(err, supervisor.ErrMailboxFull) {
		t.Fatalf("Cast into full lane: %v", err)
	}
	if err := mb.Control(supervisor.ControlReconfigure, "cfg"); err != nil {
		t.Fatalf("Control with full ordinary lane: %v", err)
	}
	if err := mb.Control(supervisor.ControlStop, nil); err != nil {
		t.Fatal(err)
	}
	if err := mb.Control(supervisor.ControlStop, nil); !errors.Is(err, supervisor.ErrMailboxFull) {
		t.Errorf("control lane over capacity: %v", err)
	}
	if mb.Depth() != 5 {
		t.Errorf("depth %d, want 5", mb.Depth())
	}
	var got []string
	for range 5 {
		m, err := mb.Receive(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if m.Kind == supervisor.KindControl {
			got = append(got, m.Control.String())
		} else {
			got = append(got, fmt.Sprint(m.Body))
		}
		m.Done()
	}
	if s := strings.Join(got, ","); s != "reconfigure,stop,0,1,2" {
		t.Errorf("received %s", s)
	}
	st := mb.Stats()
	if st.Rejected != 2 || st.Received != 5 || st.Depth != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestCallTimeoutAndLateReply: a call gives up after CallTimeout; the
// handler's late reply is dropped and counted; a call whose caller gave up
// while queued is never handed to the process.
func TestCallTimeoutAndLateReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{Name: "psu1", CallTimeout: time.Second})
		ctx := t.Context()
		errc := make(chan error, 2)
		go func() { _, err := mb.Call(ctx, "MEAS:VOLT?"); errc <- err }()
		synctest.Wait()
		m, err := mb.Receive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := mb.InProgress(); !ok || f.Body != "MEAS:VOLT?" || f.Kind != supervisor.KindCall {
			t.Errorf("InProgress %+v %v", f, ok)
		}
		// A second call, whose caller gives up while it is queued.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		go func() { _, err := mb.Call(short, "*IDN?"); errc <- err }()
		synctest.Wait()
		if mb.Depth() != 1 {
			t.Errorf("depth %d, want 1", mb.Depth())
		}
		time.Sleep(100 * time.Millisecond)
		if err := <-errc; !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "*IDN?") {
			t.Errorf("queued call: %v", err)
		}
		time.Sleep(900 * time.Millisecond)
		if err := <-errc; !errors.Is(err, supervisor.ErrCallTimeout) {
			t.Errorf("call: %v, want timeout", err)
		}
		if m.Context().Err() == nil {
			t.Error("the abandoned message's context is not cancelled")
		}
		if _, ok := mb.InProgress(); !ok {
			t.Error("the process is still busy with the abandoned call, but nothing is in progress")
		}
		if err := m.Reply("12.0", nil); !errors.Is(err, supervisor.ErrCallTimeout) {
			t.Errorf("late Reply: %v", err)
		}
		if _, ok := mb.InProgress(); ok {
			t.Error("still in progress after the late reply")
		}
		if mb.Depth() != 0 {
			t.Errorf("expired call still queued")
		}
		st := mb.Stats()
		if st.LateReplies != 1 || st.Expired != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestAbortCancelsInProgress: Abort overtakes the queue and cancels the
// message being handled at once.
func TestAbortCancelsInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
		ctx := t.Context()
		type res struct {
			v   any
			err error
		}
		resc := make(chan res)
		go func() { v, err := mb.Call(ctx, "RAMP 0 100"); resc <- res{v, err} }()
		synctest.Wait()
		_ = mb.Cast("queued behind")
		m, _ := mb.Receive(ctx)
		go func() {
			<-m.Context().Done() // the hardware operation notices the abort
			_ = m.Reply(nil, fmt.Errorf("ramp aborted: %w", m.Context().Err()))
		}()
		if err := mb.Control(supervisor.ControlAbort, nil); err != nil {
			t.Fatal(err)
		}
		r := <-resc
		if r.err == nil || !strings.Contains(r.err.Error(), "ramp aborted") {
			t.Errorf("call result %+v", r)
		}
		next, _ := mb.Receive(ctx)
		if next.Kind != supervisor.KindControl || next.Control != supervisor.ControlAbort {
			t.Errorf("next message %v %v, want the abort", next.Kind, next.Control)
		}
		next.Done()
	})
}

// mailboxProcess serves a mailbox: replies "ok:<body>", fails on "fail".
type mailboxProcess struct {
	mb      *supervisor.Mailbox
	handled chan string
}

func (p *mailboxProcess) Serve(ctx context.Context) error {
	for {
		m, err := p.mb.Receive(ctx)
		if err != nil {
			return err
		}
		body, _ := m.Body.(string)
		if p.handled != nil {
			p.handled <- body
		}
		if body == "fail" {
			return errors.New("instrument fault")
		}
		_ = m.Reply("ok:"+body, nil)
	}
}

// TestMailboxAcrossRestart: when the process fails, queued calls fail with
// ErrRestarted and are never replayed; the registered name keeps working
// for the next incarnation.
func TestMailboxAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := supervisor.NewRegistry()
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{Name: "psu1"})
		p := &mailboxProcess{mb: mb, handled: make(chan string)}
		sup := supervisor.New("devices", supervisor.Options{Registry: reg, Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "psu1", Name: "psu1", Service: p, Mailbox: mb})
		stop, _ := serve(t, sup)
		synctest.Wait()
		ctx := t.Context()

		got, ok := reg.Lookup("psu1")
		if !ok || got != mb {
			t.Fatal("psu1 not registered")
		}
		errc := make(chan error, 3)
		go func() { _, err := mb.Call(ctx, "fail"); errc <- err }()
		synctest.Wait()
		go func() { _, err := mb.Call(ctx, "OUTP ON"); errc <- err }()
		go func() { _, err := mb.Call(ctx, "VOLT 5"); errc <- err }()
		synctest.Wait()
		if n := mustChild(t, sup.Snapshot(), "psu1"); n.MailboxDepth != 2 || !strings.Contains(n.InProgress, "fail") {
			t.Errorf("snapshot before failure: depth %d in progress %q", n.MailboxDepth, n.InProgress)
		}
		if b := <-p.handled; b != "fail" {
			t.Fatalf("handled %q", b)
		}
		for range 3 {
			if err := <-errc; !errors.Is(err, supervisor.ErrRestarted) || !strings.Contains(err.Error(), "psu1") {
				t.Errorf("queued call: %v, want ErrRestarted naming psu1", err)
			}
		}
		// While backing off, calls fail fast instead of queueing.
		if _, err := mb.Call(ctx, "VOLT 6"); !errors.Is(err, supervisor.ErrRestarted) {
			t.Errorf("call while down: %v", err)
		}
		sleep(time.Second)
		mb2, _ := reg.Lookup("psu1")
		go func() {
			if b := <-p.handled; b != "MEAS?" {
				t.Errorf("new incarnation handled %q first: a replay", b)
			}
		}()
		v, err := mb2.Call(ctx, "MEAS?")
		if err != nil || v != "ok:MEAS?" {
			t.Errorf("call after restart: %v %v", v, err)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		if _, err := mb.Call(ctx, "x"); !errors.Is(err, supervisor.ErrStopped) {
			t.Errorf("call after stop: %v", err)
		}
		if err := sup.Remove("psu1"); err != nil {
			t.Fatal(err)
		}
		if _, ok := reg.Lookup("psu1"); ok || len(reg.Names()) != 0 {
			t.Error("still registered after Remove")
		}
	})
}

// TestNotifyTryReceive: a process can wait for its mailbox and its own
// poll timer in one select.
func TestNotifyTryReceive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
		ctx, cancel := context.WithCancel(t.Context())
		var log []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					log = append(log, "poll")
				case <-mb.Notify():
					for {
						m, ok := mb.TryReceive()
						if !ok {
							break
						}
						log = append(log, fmt.Sprint(m.Body))
						_ = m.Reply("done", nil)
					}
				}
			}
		}()
		time.Sleep(1500 * time.Millisecond)
		if v, err := mb.Call(ctx, "OUTP ON"); v != "done" || err != nil {
			t.Errorf("Call: %v %v", v, err)
		}
		_ = mb.Cast("note")
		time.Sleep(time.Second)
		cancel()
		<-done
		if got := strings.Join(log, ","); got != "poll,OUTP ON,note,poll" {
			t.Errorf("log %s", got)
		}
		if _, ok := mb.InProgress(); ok {
			t.Error("a message is still in progress after TryReceive found none")
		}
	})
}

// TestCastsDroppedOnExit: queued casts are dropped and counted when the
// process exits; none reach the next incarnation.
func TestCastsDroppedOnExit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
		p := &mailboxProcess{mb: mb, handled: make(chan string)}
		sup := supervisor.New("devices", supervisor.Options{Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "psu1", Service: p, Mailbox: mb})
		stop, _ := serve(t, sup)
		synctest.Wait()
		for _, b := range []string{"fail", "a", "b"} {
			if err := mb.Cast(b); err != nil {
				t.Fatal(err)
			}
		}
		if b := <-p.handled; b != "fail" {
			t.Fatal(b)
		}
		sleep(time.Second)
		if st := mb.Stats(); st.Dropped != 2 || st.Depth != 0 {
			t.Errorf("stats %+v", st)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestDoneWithoutReply: a call ended without a reply fails its caller; a
// call abandoned by its caller and then ended is not a late reply.
func TestDoneWithoutReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{CallTimeout: time.Second})
		errc := make(chan error, 1)
		go func() { _, err := mb.Call(t.Context(), "a"); errc <- err }()
		synctest.Wait()
		m, _ := mb.Receive(t.Context())
		m.Done()
		if err := <-errc; err == nil || !strings.Contains(err.Error(), "without a reply") {
			t.Errorf("call ended by Done: %v", err)
		}
		go func() { _, err := mb.Call(t.Context(), "b"); errc <- err }()
		synctest.Wait()
		m, _ = mb.Receive(t.Context())
		time.Sleep(time.Second)
		if err := <-errc; !errors.Is(err, supervisor.ErrCallTimeout) {
			t.Errorf("call: %v", err)
		}
		m.Done()
		if st := mb.Stats(); st.LateReplies != 0 {
			t.Errorf("Done counted as a late reply: %+v", st)
		}
	})
}

// TestStopOvertakesBusyProcess: while the process is busy and its ordinary
// lane is full, a stop request is the next message it receives.
func TestStopOvertakesBusyProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{Capacity: 4})
		var handled []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				m, err := mb.Receive(t.Context())
				if err != nil {
					return
				}
				if m.Kind == supervisor.KindControl && m.Control == supervisor.ControlStop {
					handled = append(handled, "stop")
					m.Done()
					return
				}
				handled = append(handled, fmt.Sprint(m.Body))
				time.Sleep(time.Second) // a slow instrument
				m.Done()
			}
		}()
		for i := range 5 { // one in progress, four queued: full
			if err := mb.Cast(i); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if err := mb.Cast(5); !errors.Is(err, supervisor.ErrMailboxFull) {
			t.Fatalf("Cast into full lane: %v", err)
		}
		if f, ok := mb.InProgress(); !ok || f.Body != 0 {
			t.Fatalf("in progress: %+v", f)
		}
		if err := mb.Control(supervisor.ControlStop, nil); err != nil {
			t.Fatal(err)
		}
		<-done
		if got := strings.Join(handled, ","); got != "0,stop" {
			t.Errorf("handled %s, want 0,stop", got)
		}
		if mb.Depth() != 4 {
			t.Errorf("depth %d, want the 4 casts still queued", mb.Depth())
		}
	})
}

// TestQueueTimeout: a call that waits in the queue longer than QueueTimeout
// fails with ErrCallTimeout and is never handed to the process; a call
// received in time waits for its reply beyond the queue timeout; with
// NoCallTimeout only the caller's context bounds it, and the message's
// context carries the caller's deadline.
func TestQueueTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{Name: "psu1", QueueTimeout: time.Second, CallTimeout: supervisor.NoCallTimeout})
		ctx, cancel := context.WithTimeout(t.Context(), time.Hour)
		defer cancel()
		deadline, _ := ctx.Deadline()
		first := make(chan error, 1)
		go func() { _, err := mb.Call(ctx, "SOUR:VOLT 12;*OPC?"); first <- err }()
		synctest.Wait()
		m, ok := mb.TryReceive()
		if !ok {
			t.Fatal("nothing received")
		}
		if dl, ok := m.Context().Deadline(); !ok || !dl.Equal(deadline) {
			t.Errorf("message deadline %v %v, want the caller's %v", dl, ok, deadline)
		}
		second := make(chan error, 1)
		go func() { _, err := mb.Call(ctx, "MEAS:VOLT?"); second <- err }()
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		select {
		case err := <-second:
			if !errors.Is(err, supervisor.ErrCallTimeout) || !strings.Contains(err.Error(), "queue timeout") || !strings.Contains(err.Error(), "MEAS:VOLT?") {
				t.Errorf("queued call: %v, want a queue timeout naming it", err)
			}
		default:
			t.Fatal("the queued call still waits after the queue timeout")
		}
		if mb.Depth() != 0 {
			t.Errorf("depth %d after the queue timeout, want 0", mb.Depth())
		}
		// The first call was received in time: it waits for its reply.
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		select {
		case err := <-first:
			t.Fatalf("received call ended without a reply: %v", err)
		default:
		}
		if err := m.Reply("1", nil); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Errorf("first call: %v", err)
		}
		if _, ok := mb.TryReceive(); ok {
			t.Error("the expired call was handed to the process")
		}
	})
}

// TestAbortCause: ControlAbort cancels the message in progress with
// ErrAborted as the cause, which tells it apart from a caller giving up.
func TestAbortCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
		errc := make(chan error, 2)
		go func() { _, err := mb.Call(t.Context(), "ramp"); errc <- err }()
		synctest.Wait()
		m, _ := mb.TryReceive()
		got, ok, err := mb.Abort("operator")
		if err != nil || !ok || got.Body != "ramp" || got.Kind != supervisor.KindCall {
			t.Fatalf("Abort = %+v, %v, %v; want the call in progress", got, ok, err)
		}
		if cause := context.Cause(m.Context()); !errors.Is(cause, supervisor.ErrAborted) {
			t.Errorf("cause %v, want ErrAborted", cause)
		}
		if err := m.Reply(nil, fmt.Errorf("ramp: %w", context.Cause(m.Context()))); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, supervisor.ErrAborted) {
			t.Errorf("call: %v, want aborted", err)
		}

		short, cancel := context.WithCancel(t.Context())
		go func() { _, err := mb.Call(short, "ramp"); errc <- err }()
		synctest.Wait()
		ctl, _ := mb.TryReceive() // the abort message itself
		if ctl.Kind != supervisor.KindControl {
			t.Fatalf("received %v, want the control message first", ctl.Kind)
		}
		m, _ = mb.TryReceive()
		if m.Body != "ramp" {
			t.Fatalf("received %v", m.Body)
		}
		cancel()
		<-errc
		if cause := context.Cause(m.Context()); errors.Is(cause, supervisor.ErrAborted) || !errors.Is(cause, context.Canceled) {
			t.Errorf("cause %v, want the caller's cancellation", cause)
		}
		m.Done()
		if _, ok, err := mb.Abort("idle"); ok || err != nil {
			t.Errorf("Abort while idle = %v, %v; want nothing aborted", ok, err)
		}
	})
}

// TestFailQueued: queued calls fail with the given error, casts are dropped,
// control messages and the message in progress stay, and the mailbox stays
// open.
func TestFailQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mb := supervisor.NewMailbox(supervisor.MailboxOptions{})
		errc := make(chan error, 3)
		for _, body := range []string{"a", "b", "c"} {
			go func() { _, err := mb.Call(t.Context(), body); errc <- err }()
			synctest.Wait()
		}
		cur, _ := mb.TryReceive() // "a" in progress
		if err := mb.Cast("d"); err != nil {
			t.Fatal(err)
		}
		if err := mb.Control(supervisor.ControlReconfigure, "r"); err != nil {
			t.Fatal(err)
		}
		lost := errors.New("connection lost")
		if n := mb.FailQueued(lost); n != 3 {
			t.Errorf("FailQueued = %d, want 3 (b, c, d)", n)
		}
		for range 2 {
			if err := <-errc; !errors.Is(err, lost) {
				t.Errorf("queued call: %v, want %v", err, lost)
			}
		}
		if mb.Depth() != 1 {
			t.Errorf("depth %d, want the control message only", mb.Depth())
		}
		if err := cur.Reply("ok", nil); err != nil {
			t.Errorf("reply to the message in progress: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("call in progress: %v", err)
		}
		if err := mb.Cast("e"); err != nil {
			t.Errorf("mailbox closed after FailQueued: %v", err)
		}
	})
}
