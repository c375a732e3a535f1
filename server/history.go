package server

import (
	"context"
	"errors"
	"time"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// Archive is what the API needs from the archive; *ingest.History (built
// WithWriter) satisfies it. All methods are safe for concurrent use.
type Archive interface {
	// Samples and Buckets answer QueryHistory.
	Samples(ctx context.Context, q ingest.HistoryQuery) ([]telemetry.Sample, bool, error)
	Buckets(ctx context.Context, q ingest.HistoryQuery) ([]ingest.Bucket, bool, error)
	// Since returns a page of every channel's samples from fromNs on, in time order.
	Since(ctx context.Context, fromNs int64, limit int) ([]telemetry.Sample, error)
	// Settle returns once every sample published before the call is queryable.
	Settle(ctx context.Context) error
}

// errNoArchive answers history requests on a server that archives nowhere.
var errNoArchive = errors.New("this server does not archive (no QuestDB configured)")

// historyService implements HistoryService once; see deviceService for the
// core/adapter split.
type historyService struct {
	archive Archive // nil without archiving
}

var aggregates = map[pb.Aggregate]ingest.Aggregate{
	pb.Aggregate_AGGREGATE_UNSPECIFIED: ingest.AggNone,
	pb.Aggregate_AGGREGATE_AVG:         ingest.AggAvg,
	pb.Aggregate_AGGREGATE_MIN:         ingest.AggMin,
	pb.Aggregate_AGGREGATE_MAX:         ingest.AggMax,
	pb.Aggregate_AGGREGATE_FIRST:       ingest.AggFirst,
	pb.Aggregate_AGGREGATE_LAST:        ingest.AggLast,
	pb.Aggregate_AGGREGATE_COUNT:       ingest.AggCount,
}

func (s *historyService) queryHistory(ctx context.Context, req *pb.QueryHistoryRequest) (*pb.QueryHistoryResponse, error) {
	if s.archive == nil {
		return nil, errNoArchive
	}
	agg, ok := aggregates[req.GetAggregate()]
	if !ok {
		return nil, errField("aggregate", "unknown value %d", req.GetAggregate())
	}
	if req.GetLimit() > ingest.MaxHistoryLimit {
		return nil, errField("limit", "at most %d, got %d", ingest.MaxHistoryLimit, req.GetLimit())
	}
	q := ingest.HistoryQuery{
		Device: req.GetDevice(), Channel: req.GetChannel(),
		From: time.Unix(0, req.GetStartNs()), Limit: int(req.GetLimit()),
		Agg: agg, Every: time.Duration(req.GetIntervalMs()) * time.Millisecond,
	}
	if req.GetEndNs() != 0 {
		q.To = time.Unix(0, req.GetEndNs())
	}
	if agg == ingest.AggNone {
		samples, trunc, err := s.archive.Samples(ctx, q)
		if err != nil {
			return nil, err
		}
		return &pb.QueryHistoryResponse{Samples: samplesToProto(samples), Truncated: trunc}, nil
	}
	buckets, trunc, err := s.archive.Buckets(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &pb.QueryHistoryResponse{Truncated: trunc, Buckets: make([]*pb.HistoryBucket, len(buckets))}
	for i, b := range buckets {
		resp.Buckets[i] = &pb.HistoryBucket{TimestampNs: b.TimeNs, Value: b.Value, Count: uint64(max(0, b.Count))}
	}
	return resp, nil
}
