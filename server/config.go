package server

import (
	"context"
	"errors"
	"sync"

	"github.com/switchyard/switchyard/config"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/supervisor"
)

// Config is what ReloadConfig and GetConfig need: the configuration in force
// and a way to reload it. A *config.Reloader is one. Without it (Options.Config
// nil) both answer Unimplemented.
type Config interface {
	// Reload reads the configuration again and applies it as a diff (or only
	// says what would change); a configuration with problems changes nothing
	// and the error wraps config.ErrInvalid.
	Reload(trigger config.Trigger, by string, dryRun bool) (config.Reload, error)
	// Active returns the configuration in force.
	Active() config.Active
}

// errNoConfig: the server has no configuration to reload (no file, or a
// cluster node, whose devices the cluster places).
var errNoConfig = errors.New("this server does not reload its configuration (started without a configuration file, or a cluster node)")

// reloadConfig reloads as the caller (the identity's name is who asked, in
// the log, the archive and the streams). The reload runs to its end even if
// the caller leaves: half a reload would be worse than none.
func (s *systemService) reloadConfig(ctx context.Context, req *pb.ReloadConfigRequest) (*pb.ReloadConfigResponse, error) {
	if s.config == nil {
		return nil, errNoConfig
	}
	rec, err := s.config.Reload(config.TriggerAPI, identityFrom(ctx).Name, req.GetDryRun())
	if err != nil && !rec.Applied {
		return nil, err
	}
	// Applied, perhaps with parts that failed: those are in reload.failed.
	return &pb.ReloadConfigResponse{Reload: reloadToProto(&rec)}, nil
}

func (s *systemService) getConfig(_ context.Context, _ *pb.GetConfigRequest) (*pb.GetConfigResponse, error) {
	if s.config == nil {
		return nil, errNoConfig
	}
	a := s.config.Active()
	resp := &pb.GetConfigResponse{
		Hash: a.Config.Hash, Source: a.Source, LoadedNs: unixNano(a.LoadedAt), LoadedBy: a.By,
		LoadedTrigger: triggerToProto(a.Trigger), Watch: a.Config.Watch, NeedsRestart: a.NeedsRestart,
		Devices: toUint32(len(a.Config.Devices)),
	}
	if a.Last != nil {
		resp.LastReload = reloadToProto(a.Last)
	}
	return resp, nil
}

func triggerToProto(t config.Trigger) pb.ConfigTrigger {
	switch t {
	case config.TriggerAPI:
		return pb.ConfigTrigger_CONFIG_TRIGGER_API
	case config.TriggerSignal:
		return pb.ConfigTrigger_CONFIG_TRIGGER_SIGNAL
	case config.TriggerWatch:
		return pb.ConfigTrigger_CONFIG_TRIGGER_WATCH
	}
	return pb.ConfigTrigger_CONFIG_TRIGGER_UNSPECIFIED
}

// reloadToProto converts a reload record.
func reloadToProto(r *config.Reload) *pb.ConfigReload {
	d := &pb.ConfigDiff{
		Added: r.Diff.Added, Removed: r.Diff.Removed, Restarted: r.Diff.Restarted,
		Unchanged: toUint32(r.Diff.Unchanged), Alarms: r.Diff.Alarms, ArchiveFilter: r.Diff.ArchiveFilter,
		NeedsRestart: r.Diff.NeedsRestart,
	}
	for _, u := range r.Diff.Updated {
		d.Updated = append(d.Updated, &pb.DeviceUpdate{Device: u.Name, Changed: u.What})
	}
	return &pb.ConfigReload{
		TimestampNs: unixNano(r.Time), Trigger: triggerToProto(r.Trigger), By: r.By, Source: r.Source,
		Hash: r.Hash, PreviousHash: r.PreviousHash, Applied: r.Applied, DryRun: r.DryRun,
		Summary: r.Summary(), Diff: d, Errors: r.Errors, Failed: r.Failed, Warnings: r.Warnings,
		DurationNs: r.Took.Nanoseconds(),
	}
}

// reloadOf returns the reload a supervision event carries, if it is one.
func reloadOf(detail any) *config.Reload {
	switch r := detail.(type) {
	case *config.Reload:
		return r
	case config.Reload:
		return &r
	}
	return nil
}

// reloadWatch hands a stream the configuration reloads of the supervision
// tree's event stream (EventReconfigured), read on a goroutine of its own so
// that the stream can wait for them beside its other sources. Without an
// EventSource it never has any.
type reloadWatch struct {
	sub  *supervisor.Subscription // nil without an EventSource
	wake chan struct{}
	done chan struct{}
	stop context.CancelFunc

	mu      sync.Mutex
	pending []*config.Reload
}

func newReloadWatch(tree Tree) *reloadWatch {
	w := &reloadWatch{wake: make(chan struct{}, 1), done: make(chan struct{})}
	src, ok := tree.(EventSource)
	if !ok {
		close(w.done)
		w.stop = func() {}
		return w
	}
	w.sub = src.Events(supervisionEventBuffer)
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go func() {
		defer close(w.done)
		for {
			ev, err := w.sub.Next(ctx)
			if err != nil {
				return
			}
			r := reloadOf(ev.Detail)
			if ev.Kind != supervisor.EventReconfigured || r == nil || !r.Applied {
				continue
			}
			w.mu.Lock()
			w.pending = append(w.pending, r)
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// ready receives a value when reloads may be waiting; take them.
func (w *reloadWatch) ready() <-chan struct{} { return w.wake }

func (w *reloadWatch) take() []*config.Reload {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.pending
	w.pending = nil
	return out
}

// close ends the watch and waits for its goroutine.
func (w *reloadWatch) close() {
	w.stop()
	if w.sub != nil {
		w.sub.Close()
	}
	<-w.done
}
