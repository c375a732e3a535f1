package server

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/switchyard/switchyard/cluster"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// Cluster is what the server shows of the cluster this node belongs to.
type Cluster interface {
	// Node is this node's name.
	Node() string
	// View reads the cluster's state.
	View(ctx context.Context) (cluster.View, error)
}

// errNotClustered answers GetClusterView on a single node.
var errNotClustered = errors.New("this server is not in a cluster (no cluster: section)")

func (s *systemService) getClusterView(ctx context.Context, _ *pb.GetClusterViewRequest) (*pb.GetClusterViewResponse, error) {
	if s.cluster == nil {
		return nil, errNotClustered
	}
	v, err := s.cluster.View(ctx)
	if err != nil {
		return nil, err
	}
	out := &pb.GetClusterViewResponse{Node: s.cluster.Node(), ArchivePending: v.Archiver.Pending,
		ArchiveUnacked: uint64(max(v.Archiver.Unacked, 0)), ArchiveError: v.ArchiverErr,
		Stream: &pb.ClusterStream{Messages: v.Stream.Messages, Bytes: v.Stream.Bytes,
			First: timeToProto(v.Stream.First), Last: timeToProto(v.Stream.Last)}}
	for _, n := range v.Nodes {
		pn := &pb.ClusterNode{Name: n.Name, Address: n.Address, Started: timeToProto(n.Started), Devices: toUint32(n.Devices)}
		for _, sel := range n.Selectors {
			var parts []string
			for k, g := range sel {
				parts = append(parts, k+"="+g)
			}
			sort.Strings(parts)
			pn.MayOwn = append(pn.MayOwn, strings.Join(parts, ","))
		}
		out.Nodes = append(out.Nodes, pn)
	}
	for _, l := range v.Leases {
		out.Leases = append(out.Leases, &pb.DeviceLease{Device: l.Device, Node: l.Node,
			Acquired: timeToProto(l.Acquired), Renewed: timeToProto(l.Renewed)})
	}
	return out, nil
}

// CallerOf names the caller of the request ctx belongs to (its identity's
// name and role), for a request this node routes to another: a cluster node
// carries it to a device's owner.
func CallerOf(ctx context.Context) (name, role string) {
	id := identityFrom(ctx)
	return id.Name, id.Role.String()
}
