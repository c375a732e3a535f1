package server

import (
	"context"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
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
	server  *Server // for RestartProcess of the API itself
	audit   *auditTrail
	authOn  bool
	config  Config // nil: no configuration to reload
}

func (s *systemService) getSupervisionTree(_ context.Context, _ *pb.GetSupervisionTreeRequest) (*pb.GetSupervisionTreeResponse, error) {
	root := s.tree.Snapshot()
	return &pb.GetSupervisionTreeResponse{Root: nodeToProto(&root)}, nil
}

// Version is the server's version, reported by GetIdentity. Set it at build time
// (-ldflags "-X github.com/switchyard/switchyard/server.Version=...") or leave the
// default.
var Version = "0.1.0-dev"

func (s *systemService) getIdentity(ctx context.Context, _ *pb.GetIdentityRequest) (*pb.GetIdentityResponse, error) {
	id := identityFrom(ctx)
	return &pb.GetIdentityResponse{
		Name:           id.Name,
		Role:           id.Role.String(),
		Authenticated:  id.Authenticated,
		Method:         string(id.Method),
		AllowedMethods: allowedMethods(id.Role),
		ServerVersion:  Version,
	}, nil
}
