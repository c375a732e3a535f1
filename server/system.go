package server

import (
	"context"

	"connectrpc.com/connect"

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
