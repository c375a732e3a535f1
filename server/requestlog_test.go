package server_test

import (
	"strings"
	"testing"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// A call that succeeds is logged at INFO: statusOf(nil) is INTERNAL's code, and
// the log level must not be taken from it (every successful call was logged
// as an ERROR).
func TestSuccessfulCallLoggedAtInfo(t *testing.T) {
	e := startSecure(t, nil)
	tr := e.dialGRPC(t, caller{token: e.tokens["ada"]})
	defer tr.close()
	if _, err := tr.unary(testCtx(t), pb.SystemService_GetIdentity_FullMethodName, &pb.GetIdentityRequest{}); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `msg="finished call"`) && strings.Contains(line, "GetIdentity") && strings.Contains(line, "code=OK") {
			found = true
			if !strings.Contains(line, "level=INFO") {
				t.Errorf("a successful call is not logged at INFO: %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no log line for the call:\n%s", e.logs.String())
	}
}

// An audited call is logged once, by its audit line (which names everything
// the request line would, user-agent and client included); a call that is
// not audited by its request line ("finished call").
func TestAuditedCallLoggedOnce(t *testing.T) {
	e := startSecure(t, nil)
	tr := e.dialGRPC(t, caller{token: e.tokens["otto"]})
	defer tr.close()
	ctx := testCtx(t)
	if _, err := tr.unary(ctx, pb.DeviceService_SendCommand_FullMethodName, &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{"12.5"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.unary(ctx, pb.DeviceService_ListDevices_FullMethodName, &pb.ListDevicesRequest{}); err != nil {
		t.Fatal(err)
	}
	var audits, commandCalls, listCalls int
	for _, line := range strings.Split(e.logs.String(), "\n") {
		isCommand := strings.Contains(line, "rpc="+pb.DeviceService_SendCommand_FullMethodName)
		switch {
		case strings.Contains(line, "msg=audit") && isCommand:
			audits++
			for _, want := range []string{"identity=otto", "role=operator", "code=OK", "transport=grpc", "duration=", "user_agent=", "peer=127.0.0.1:"} {
				if !strings.Contains(line, want) {
					t.Errorf("the audit line lacks %s: %s", want, line)
				}
			}
		case strings.Contains(line, `msg="finished call"`) && isCommand:
			commandCalls++
		case strings.Contains(line, `msg="finished call"`) && strings.Contains(line, "rpc="+pb.DeviceService_ListDevices_FullMethodName):
			listCalls++
		}
	}
	if audits != 1 || commandCalls != 0 || listCalls != 1 {
		t.Errorf("SendCommand: %d audit lines (want 1), %d request lines (want 0); ListDevices: %d request lines (want 1)\n%s",
			audits, commandCalls, listCalls, e.logs.String())
	}
}
