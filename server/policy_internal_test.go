package server

import (
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/telemetry"
)

// TestPolicyCoversEveryRPC walks the service descriptors of the contract (every
// service of package switchyard.v1 in the registry): an RPC without a policy
// entry fails here, so nobody can add an RPC and forget to say who may call it.
// It also checks that the server's rpc table serves exactly those RPCs.
func TestPolicyCoversEveryRPC(t *testing.T) {
	var contract []string
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if fd.Package() != "switchyard.v1" {
			return true
		}
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				contract = append(contract, "/"+string(sd.FullName())+"/"+string(sd.Methods().Get(j).Name()))
			}
		}
		return true
	})
	if len(contract) < 19 {
		t.Fatalf("found only %d RPCs in the contract: %v", len(contract), contract)
	}
	for _, m := range contract {
		if _, ok := policy[m]; !ok {
			t.Errorf("%s has no entry in the policy table (server/policy.go)", m)
		}
	}
	// Every entry is an RPC the contract (or grpc's health/reflection) has.
	for m := range policy {
		name := protoreflect.FullName(m[1:])
		for i := len(name) - 1; i >= 0; i-- {
			if name[i] == '/' {
				name = name[:i] + "." + name[i+1:]
				break
			}
		}
		if _, err := protoregistry.GlobalFiles.FindDescriptorByName(name); err != nil {
			t.Errorf("policy entry %s names no RPC: %v", m, err)
		}
	}
	// The rpc table serves every RPC of the contract (with alarms on).
	s := New(telemetry.NewHub(nil), nil, nil, Options{Alarms: &alarm.Engine{}})
	var served []string
	run := s.newRun()
	defer run.grpc.Stop() // its stream workers
	for _, r := range s.rpcs(run) {
		if _, ok := policy[r.procedure]; !ok {
			t.Errorf("the server serves %s, which has no policy entry", r.procedure)
		}
		if r.method.ParentFile().Package() == "switchyard.v1" {
			served = append(served, r.procedure)
		}
	}
	sort.Strings(served)
	sort.Strings(contract)
	if !slices.Equal(served, contract) {
		t.Errorf("served %v\ncontract %v", served, contract)
	}
}

// An RPC missing from the table is refused to everyone, admins included.
func TestDefaultDeny(t *testing.T) {
	err := authorize(adminIdentity(), "/switchyard.v1.DeviceService/Unlisted")
	if _, ok := err.(*permissionError); !ok {
		t.Fatalf("authorize(admin, unlisted) = %v, want a permission error", err)
	}
}

func adminIdentity() (id auth.Identity) {
	id.Name, id.Role, id.Authenticated = "ada", auth.Admin, true
	return id
}
