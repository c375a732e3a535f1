package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// transitions collects a WatchAlarms stream.
type transitions struct {
	ch  chan *pb.AlarmTransition
	end chan *pb.ReplayEnd // the replay's end, when since_ns asked for one
	err chan error
}

func watchAlarms(t *testing.T, ctx context.Context, n *localNode, device string, sinceNs int64) *transitions {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	stream, err := pb.NewAlarmServiceClient(n.conn).WatchAlarms(ctx, &pb.WatchAlarmsRequest{
		Filter: &pb.AlarmFilter{Devices: []string{device}}, SinceNs: sinceNs})
	if err != nil {
		t.Fatal(err)
	}
	w := &transitions{ch: make(chan *pb.AlarmTransition, 100), end: make(chan *pb.ReplayEnd, 1), err: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				w.err <- err
				return
			}
			if end := resp.GetReplayEnd(); end != nil {
				w.end <- end
				continue
			}
			w.ch <- resp.GetTransition()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-w.err
	})
	return w
}

// next waits for the next transition of channel.
func (w *transitions) next(t *testing.T, channel string) *pb.AlarmTransition {
	t.Helper()
	for {
		select {
		case tr := <-w.ch:
			if tr.GetAlarm().GetChannel() == channel {
				return tr
			}
		case err := <-w.err:
			t.Fatalf("WatchAlarms ended: %v", err)
		case <-time.After(20 * time.Second):
			t.Fatalf("no transition of %s within 20s", channel)
		}
	}
}

// TestClusterAlarmsOnAnyNode: a node that owns none of the devices shows
// the owner's alarms (WatchAlarms, ListActiveAlarms, GetAlarmLimits) and
// takes operator actions on them to the owner (acknowledge, shelve, limits),
// recorded as the caller who asked it; the audit record on the node asked
// names that caller. While no node owns the device an action fails with
// DEVICE_IN_FAILOVER; the next owner goes on from what was done.
func TestClusterAlarmsOnAnyNode(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 29})
	tokensPath, tokens := servertest.TokensFile(t, map[string]auth.Role{"ann": auth.Operator, "root": auth.Admin})
	lc := newLocalCluster(t, fleet, 0)
	lc.configure = func(cfg *config.Config) { cfg.Auth = config.Auth{TokensFile: tokensPath} }
	lc.token = tokens["root"]
	owner := lc.start("a")
	viewer := lc.start("b", nowhere)
	lc.waitOwned(owner, viewer)
	psu := fleet.Instruments()[0].Name()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	as := func(who string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tokens[who])
	}
	alarmsB := pb.NewAlarmServiceClient(viewer.conn)

	// b's watch asks for a replay: a cluster node has none to give, says so
	// and claims no join point, then streams every owner's transitions.
	watch := watchAlarms(t, as("root"), viewer, psu, time.Now().Add(-time.Minute).UnixNano())
	select {
	case end := <-watch.end:
		if end.GetComplete() || end.GetLiveAfterNs() != 0 || !strings.Contains(end.GetReason(), "cluster node does not replay alarm") {
			t.Errorf("b's replay end %v, want not complete, no live_after_ns, the cluster node's reason", end)
		}
	case err := <-watch.err:
		t.Fatalf("WatchAlarms through b ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no replay end from b within 20s")
	}
	audit, err := pb.NewSystemServiceClient(viewer.conn).WatchAudit(as("root"), &pb.WatchAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Header(); err != nil {
		t.Fatal(err)
	}
	// A set-point through b raises the owner's alarm: b's watch sees it,
	// b lists it.
	if _, err := pb.NewDeviceServiceClient(viewer.conn).SendCommand(as("ann"), &pb.SendCommandRequest{Device: psu,
		Command: &pb.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{"25"}}); err != nil {
		t.Fatalf("set_voltage 25 through b: %v", err)
	}
	var raised *pb.AlarmTransition
	for raised.GetAlarm().GetCondition() != pb.AlarmCondition_ALARM_CONDITION_HIHI {
		raised = watch.next(t, "voltage")
	}
	if raised.GetEvent() != pb.AlarmEvent_ALARM_EVENT_RAISED && raised.GetEvent() != pb.AlarmEvent_ALARM_EVENT_CHANGED {
		t.Errorf("b watched %v, want the alarm raised", raised)
	}
	eventually.True(t, 10*time.Second, "b lists "+psu+"'s HIHI", func() bool {
		list, err := alarmsB.ListActiveAlarms(as("ann"), &pb.ListActiveAlarmsRequest{})
		if err != nil {
			t.Fatalf("ListActiveAlarms on b: %v", err)
		}
		for _, a := range list.GetAlarms() {
			if a.GetDevice() == psu && a.GetChannel() == "voltage" {
				return a.GetCondition() == pb.AlarmCondition_ALARM_CONDITION_HIHI && a.GetLimits().GetHihi() != nil
			}
		}
		return false
	})

	// Acknowledge and shelve through b: done on a, as ann, seen on b's watch.
	ack, err := alarmsB.Acknowledge(as("ann"), &pb.AcknowledgeRequest{Device: psu, Channel: "voltage", Comment: "seen"})
	if err != nil || !ack.GetAlarm().GetAcked() || ack.GetAlarm().GetAckedBy() != "ann" {
		t.Fatalf("acknowledge through b: %v, %v", ack, err)
	}
	if tr := watch.next(t, "voltage"); tr.GetEvent() != pb.AlarmEvent_ALARM_EVENT_ACKED || tr.GetWho() != "ann" {
		t.Errorf("b watched %v, want ACKED by ann", tr)
	}
	until := time.Now().Add(time.Hour).UnixNano()
	if _, err := alarmsB.Shelve(as("ann"), &pb.ShelveRequest{Device: psu, Channel: "voltage", UntilNs: until, Comment: "maintenance"}); err != nil {
		t.Fatalf("shelve through b: %v", err)
	}
	if tr := watch.next(t, "voltage"); tr.GetEvent() != pb.AlarmEvent_ALARM_EVENT_SHELVED || tr.GetAlarm().GetShelvedBy() != "ann" {
		t.Errorf("b watched %v, want SHELVED by ann", tr)
	}
	onOwner, err := pb.NewAlarmServiceClient(owner.conn).GetAlarmLimits(as("root"), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "voltage"})
	if a := onOwner.GetAlarm(); err != nil || !a.GetAcked() || a.GetAckedBy() != "ann" || a.GetShelvedUntilNs() != until || a.GetShelveComment() != "maintenance" {
		t.Errorf("the alarm on its owner a: %v, %v; want acknowledged and shelved by ann", a, err)
	}
	// Limits of a channel that has no alarm yet, through b.
	limits := &pb.AlarmLimits{High: &pb.Threshold{Value: 3}}
	if _, err := alarmsB.SetAlarmLimits(as("root"), &pb.SetAlarmLimitsRequest{Device: psu, Channel: "current", Limits: limits}); err != nil {
		t.Fatalf("set limits of current through b: %v", err)
	}
	got, err := alarmsB.GetAlarmLimits(as("ann"), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "current"})
	if err != nil || got.GetAlarm().GetLimits().GetHigh().GetValue() != 3 {
		t.Errorf("limits of current through b: %v, %v", got, err)
	}
	if _, err := alarmsB.GetAlarmLimits(as("ann"), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "nope"}); status.Code(err).String() != "NotFound" {
		t.Errorf("limits of a channel without an alarm through b: %v, want NOT_FOUND", err)
	}
	// b's audit record of the acknowledgement names ann.
	for {
		r, err := audit.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if rec := r.GetRecord(); strings.HasSuffix(rec.GetRpc(), "/Acknowledge") {
			if rec.GetIdentity() != "ann" || rec.GetRole() != "operator" || rec.GetDevice() != psu || rec.GetCode() != "OK" {
				t.Errorf("b's audit record of the acknowledgement: %v, want ann's", rec)
			}
			break
		}
	}

	// An abort through b reaches a with ann as its caller (a's log says so;
	// b's audit record names her too).
	if _, err := pb.NewDeviceServiceClient(viewer.conn).AbortCommand(as("ann"), &pb.AbortCommandRequest{Device: psu, Reason: "test"}); err != nil {
		t.Fatalf("abort through b: %v", err)
	}
	eventually.True(t, 10*time.Second, "a logs the routed abort with its caller", func() bool {
		b, _ := os.ReadFile(owner.log)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "abort routed to this node") {
				return strings.Contains(line, "caller=ann role=operator via=b")
			}
		}
		return false
	})

	// The nodes' metrics: a holds the lease, b routed what it was asked.
	if m := scrapeMetric(t, owner, "switchyard_cluster_leases_held"); m != 1 {
		t.Errorf("a's switchyard_cluster_leases_held %v, want 1", m)
	}
	if m := scrapeMetric(t, viewer, `switchyard_cluster_routed_requests_total{outcome="answered"}`); m < 7 {
		t.Errorf("b's routed requests answered: %v, want the command, acknowledgement, shelf, limits, reads and abort (7 or more)", m)
	}

	// The owner stops; no node may own the supply: an action fails cleanly.
	if err := owner.stop(); err != nil {
		t.Fatal(err)
	}
	_, err = alarmsB.Acknowledge(as("ann"), &pb.AcknowledgeRequest{Device: psu, Channel: "voltage"})
	if st := status.Convert(err); err == nil || st.Code().String() != "Unavailable" || grpcReasonOf(st) != "DEVICE_IN_FAILOVER" {
		t.Errorf("acknowledge with no owner: %v, want UNAVAILABLE with DEVICE_IN_FAILOVER", err)
	}
	if m := scrapeMetric(t, viewer, `switchyard_cluster_routed_requests_total{outcome="failover"}`); m != 1 {
		t.Errorf("b's routed requests in failover: %v, want 1", m)
	}
	// Its alarm is still listed on b, as a left it.
	list, err := alarmsB.ListActiveAlarms(as("ann"), &pb.ListActiveAlarmsRequest{IncludeShelved: true})
	if err != nil || len(list.GetAlarms()) == 0 || !list.GetAlarms()[0].GetAcked() {
		t.Errorf("b's list with no owner: %v, %v; want a's last state of the alarm", list, err)
	}
	// A new owner goes on from it: acknowledged and shelved by ann, not raised again.
	next := lc.start("c")
	eventually.True(t, 30*time.Second, "c owns "+psu, func() bool { return lc.owners()[psu] == "c" })
	eventually.True(t, 30*time.Second, psu+"'s alarm on c, through b, as ann left it", func() bool {
		got, err := alarmsB.GetAlarmLimits(as("ann"), &pb.GetAlarmLimitsRequest{Device: psu, Channel: "voltage"})
		var st interface{ GRPCStatus() *status.Status }
		if errors.As(err, &st) && grpcReasonOf(st.GRPCStatus()) == "DEVICE_IN_FAILOVER" {
			return false
		}
		a := got.GetAlarm()
		return err == nil && a.GetAcked() && a.GetAckedBy() == "ann" && a.GetShelvedUntilNs() == until &&
			a.GetCondition() == pb.AlarmCondition_ALARM_CONDITION_HIHI
	})
	_ = next
}

// scrapeMetric reads one sample of a node's /metrics ("name" or
// "name{labels}" as the exposition writes it); -1 if it is not there.
func scrapeMetric(t *testing.T, n *localNode, sample string) float64 {
	t.Helper()
	_, h := n.a.Addrs()
	resp, err := http.Get("http://" + h.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}
