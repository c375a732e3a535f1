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
