package server

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/feed"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// auditWatchBuffer bounds the records one WatchAudit stream may fall behind by;
// older ones are dropped and counted.
const auditWatchBuffer = 1024

// maxAuditField bounds each text the audit record copies from a request.
const maxAuditField = 256

// auditTrail writes every audit record to the log, to the archive sink and to
// the WatchAudit streams. It outlives the runs of Serve. Safe for concurrent use.
type auditTrail struct {
	log  *slog.Logger
	sink audit.Sink // nil: not archived

	mu       sync.Mutex
	watchers map[*auditWatch]struct{}
}

func newAuditTrail(log *slog.Logger, sink audit.Sink) *auditTrail {
	return &auditTrail{log: log, sink: sink, watchers: map[*auditWatch]struct{}{}}
}

func (t *auditTrail) record(r audit.Record) {
	t.log.Info("audit", "identity", r.Identity, "role", r.Role, "method", r.Method, "peer", r.Peer,
		"transport", r.Transport, "rpc", r.RPC, "device", r.Device, "target", r.Target, "args", r.Args,
		"code", r.Code, "reason", r.Reason, "error", r.Error, "duration", r.Duration,
		"user_agent", r.UserAgent, "client", r.Client)
	if t.sink != nil {
		t.sink.Record(r)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for w := range t.watchers {
		w.push(r)
	}
}

// auditWatch is one WatchAudit stream's queue: drop-oldest past
// auditWatchBuffer (a feed.Queue).
type auditWatch struct{ q *feed.Queue[audit.Record] }

func (w *auditWatch) push(r audit.Record) { w.q.Offer(r) }

func (w *auditWatch) take() ([]audit.Record, uint64) {
	return w.q.Drain(nil, 0), w.q.Dropped()
}

func (t *auditTrail) watch() (*auditWatch, func()) {
	w := &auditWatch{q: feed.New(feed.Options[audit.Record]{Policy: feed.DropOldest, Capacity: auditWatchBuffer})}
	t.mu.Lock()
	t.watchers[w] = struct{}{}
	t.mu.Unlock()
	return w, func() {
		t.mu.Lock()
		delete(t.watchers, w)
		t.mu.Unlock()
	}
}

// watchAudit streams the audit trail until ctx ends or the server shuts down.
func (s *systemService) watchAudit(ctx context.Context, _ *pb.WatchAuditRequest, out streamOut[pb.WatchAuditResponse]) error {
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("WatchAudit")()
	w, stop := s.audit.watch()
	defer stop()
	if err := out.header(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-w.q.Ready():
		}
		recs, dropped := w.take()
		for i := range recs {
			if err := out.send(&pb.WatchAuditResponse{Record: auditToProto(&recs[i]), Dropped: dropped}); err != nil {
				return err
			}
		}
	}
}

func auditToProto(r *audit.Record) *pb.AuditRecord {
	return &pb.AuditRecord{
		TimestampNs: r.Time.UnixNano(), Identity: r.Identity, Role: r.Role, Method: r.Method,
		Peer: r.Peer, Transport: r.Transport, Rpc: r.RPC, Device: r.Device, Target: r.Target,
		Args: r.Args, Code: r.Code, Reason: r.Reason, Error: r.Error, DurationNs: r.Duration.Nanoseconds(),
		UserAgent: r.UserAgent, Client: r.Client,
	}
}

// auditSubject says what a state-changing request acts on, each text cut to
// maxAuditField.
func auditSubject(req any) (device, target string, args []string) {
	switch r := req.(type) {
	case *pb.SendCommandRequest:
		device = r.GetDevice()
		if raw, ok := r.GetCommand().(*pb.SendCommandRequest_Raw); ok {
			target = "raw " + raw.Raw
		} else {
			target = r.GetName()
		}
		args = r.GetArgs()
	case *pb.AbortCommandRequest:
		device, args = r.GetDevice(), []string{r.GetReason()}
	case *pb.AcknowledgeRequest:
		device, target, args = r.GetDevice(), r.GetChannel(), []string{r.GetComment()}
	case *pb.ShelveRequest:
		device, target = r.GetDevice(), r.GetChannel()
		until := "unshelve"
		if ns := r.GetUntilNs(); ns != 0 {
			until = time.Unix(0, ns).UTC().Format(time.RFC3339)
		}
		args = []string{until, r.GetComment()}
	case *pb.SetAlarmLimitsRequest:
		device, target = r.GetDevice(), r.GetChannel()
		limits, _ := protojson.Marshal(r.GetLimits())
		args = []string{string(limits), r.GetComment()}
	case *pb.RestartProcessRequest:
		target = r.GetPath()
	case *pb.ReloadConfigRequest:
		target = "configuration"
		if r.GetDryRun() {
			target += " (dry run)"
		}
	}
	out := make([]string, 0, min(len(args), 32))
	for _, a := range args[:min(len(args), 32)] {
		out = append(out, cut(a, maxAuditField))
	}
	return cut(device, maxAuditField), cut(target, maxAuditField), out
}

// cut returns s cut to at most n bytes (at a rune boundary), marked when cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + "..."
}
