package server

import (
	"context"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/supervisor"
)

// Tree is what the server needs from the supervisor: a snapshot of its tree.
type Tree interface {
	// Snapshot returns the whole tree as it is now.
	Snapshot() supervisor.Node
}

// systemService implements SystemService once; see deviceService for the
// core/adapter split.
type systemService struct {
	tree    Tree // also an EventSource for WatchSupervisionEvents
	life    context.Context
	metrics *metrics
	cluster Cluster // nil on a single node
}

var _ switchyardv1connect.SystemServiceHandler = (*systemService)(nil)

func (s *systemService) getSupervisionTree(_ context.Context, _ *pb.GetSupervisionTreeRequest) (*pb.GetSupervisionTreeResponse, error) {
	root := s.tree.Snapshot()
	return &pb.GetSupervisionTreeResponse{Root: nodeToProto(&root)}, nil
}

// GetSupervisionTree implements switchyardv1connect.SystemServiceHandler.
func (s *systemService) GetSupervisionTree(ctx context.Context, req *connect.Request[pb.GetSupervisionTreeRequest]) (*connect.Response[pb.GetSupervisionTreeResponse], error) {
	return connectResponse(s.getSupervisionTree(ctx, req.Msg))
}

// Version is the server's version, reported by GetIdentity. Set it at build time
// (-ldflags "-X github.com/switchyard/switchyard/server.Version=...") or leave the
// default.
var Version = "0.1.0-dev"

func (s *systemService) getIdentity(_ context.Context, _ *pb.GetIdentityRequest) (*pb.GetIdentityResponse, error) {
	// Without authentication every caller is anonymous and may call everything.
	return &pb.GetIdentityResponse{
		Name:           "anonymous",
		Role:           "admin",
		Method:         "none",
		AllowedMethods: allMethods(),
		ServerVersion:  Version,
	}, nil
}

// GetIdentity implements switchyardv1connect.SystemServiceHandler.
func (s *systemService) GetIdentity(ctx context.Context, req *connect.Request[pb.GetIdentityRequest]) (*connect.Response[pb.GetIdentityResponse], error) {
	return connectResponse(s.getIdentity(ctx, req.Msg))
}

// allMethods lists the full names of every RPC of the Switchyard services
// ("/switchyard.v1.DeviceService/SendCommand"), in descriptor order.
func allMethods() []string {
	var out []string
	for _, fd := range []protoreflect.FileDescriptor{
		pb.File_switchyard_v1_device_proto, pb.File_switchyard_v1_telemetry_proto,
		pb.File_switchyard_v1_system_proto, pb.File_switchyard_v1_alarm_proto,
		pb.File_switchyard_v1_history_proto,
	} {
		svcs := fd.Services()
		for i := range svcs.Len() {
			sd := svcs.Get(i)
			methods := sd.Methods()
			for j := range methods.Len() {
				out = append(out, "/"+string(sd.FullName())+"/"+string(methods.Get(j).Name()))
			}
		}
	}
	return out
}
