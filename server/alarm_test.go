package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/telemetry"
)

func TestAlarmService(t *testing.T) {
	hub := telemetry.NewHub(nil)
	devices := newFakeDevices()
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
	defer sub.Close()
	states := devicemgr.StatusWatch{StateWatch: devices.WatchStates()}
	defer states.Close()
	limits := alarm.Limits{High: alarm.Threshold{Value: 10, Severity: alarm.Minor}, HiHi: alarm.Threshold{Value: 20, Severity: alarm.Major}}
	eng, err := alarm.NewEngine([]alarm.Rule{{Devices: []string{"psu*"}, Channels: []string{"volt"}, Group: "power", Limits: limits}},
		sub, states, alarm.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	run := servertest.Start(t, hub, devices, fakeTree{testTree}, server.Options{Alarms: eng})
	conn := run.Dial(t)
	client := pb.NewAlarmServiceClient(conn)
	tctx := testCtx(t)

	hr, err := healthpb.NewHealthClient(conn).Check(tctx, &healthpb.HealthCheckRequest{Service: "switchyard.v1.AlarmService"})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of switchyard.v1.AlarmService = %v, %v; want SERVING", hr, err)
	}

	watch, err := client.WatchAlarms(tctx, &pb.WatchAlarmsRequest{Filter: &pb.AlarmFilter{Groups: []string{"power"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}
	hub.Publish(floatSample("psu1", "volt", 1, 5), floatSample("psu1", "curr", 1, 50), floatSample("psu1", "volt", 2, 12))
	resp, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	tr := resp.GetTransition()
	if tr.GetEvent() != pb.AlarmEvent_ALARM_EVENT_RAISED || tr.GetAlarm().GetCondition() != pb.AlarmCondition_ALARM_CONDITION_HIGH ||
		tr.GetAlarm().GetSeverity() != pb.Severity_SEVERITY_MINOR || tr.GetAlarm().GetLimits().GetHigh().GetValue() != 10 {
		t.Fatalf("transition %v", tr)
	}

	// The same over Connect, on the HTTP port.
	cc := switchyardv1connect.NewAlarmServiceClient(http.DefaultClient, run.HTTPURL)
	list, err := cc.ListActiveAlarms(tctx, connect.NewRequest(&pb.ListActiveAlarmsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if a := list.Msg.GetAlarms(); len(a) != 1 || a[0].GetDevice() != "psu1" || a[0].GetValue() != 12 {
		t.Fatalf("active alarms %v", a)
	}

	_, err = client.Acknowledge(tctx, &pb.AcknowledgeRequest{Device: "psu9", Channel: "volt", Who: "ann"})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("ack of unknown: %v", err)
	}
	ack, err := client.Acknowledge(tctx, &pb.AcknowledgeRequest{Device: "psu1", Channel: "volt", Who: "ann", Comment: "seen"})
	if err != nil || !ack.GetAlarm().GetAcked() || ack.GetAlarm().GetAckedBy() != "ann" {
		t.Fatalf("ack: %v %v", ack, err)
	}
	_, err = client.SetAlarmLimits(tctx, &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "volt", Who: "ann",
		Limits: &pb.AlarmLimits{High: &pb.Threshold{Value: 30}, Hihi: &pb.Threshold{Value: 20}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limits: hihi: must be >= high") {
		t.Fatalf("bad limits: %v", err)
	}
	set, err := client.SetAlarmLimits(tctx, &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "volt", Who: "ann", Comment: "widen",
		Limits: &pb.AlarmLimits{High: &pb.Threshold{Value: 15}}})
	if err != nil || set.GetAlarm().GetSeverity() != pb.Severity_SEVERITY_NO_ALARM {
		t.Fatalf("set limits: %v %v", set, err)
	}
	got, err := client.GetAlarmLimits(tctx, &pb.GetAlarmLimitsRequest{Device: "psu1", Channel: "volt"})
	if err != nil || got.GetAlarm().GetLimits().GetHigh().GetSeverity() != pb.Severity_SEVERITY_MINOR || got.GetAlarm().GetLimits().GetHihi() != nil {
		t.Fatalf("get limits: %v %v", got, err)
	}
	until := time.Now().Add(time.Hour).UnixNano()
	if _, err := client.Shelve(tctx, &pb.ShelveRequest{Device: "psu1", Channel: "volt", Who: "bob", UntilNs: until}); err != nil {
		t.Fatal(err)
	}
	// The watch saw every transition, in order.
	var events []pb.AlarmEvent
	for len(events) < 4 {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, resp.GetTransition().GetEvent())
	}
	want := []pb.AlarmEvent{pb.AlarmEvent_ALARM_EVENT_ACKED, pb.AlarmEvent_ALARM_EVENT_LIMITS_CHANGED,
		pb.AlarmEvent_ALARM_EVENT_CLEARED, pb.AlarmEvent_ALARM_EVENT_SHELVED}
	for i := range want {
		if events[i] != want[i] {
			t.Fatalf("events %v, want %v...", events, want)
		}
	}
}
