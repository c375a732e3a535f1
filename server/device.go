package server

import (
	"context"
	"log/slog"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// Devices is what the server needs from the device manager.
type Devices interface {
	// List returns every configured device.
	List() []devicemgr.Info
	// Get returns one device, or an error wrapping devicemgr.ErrNotFound.
	Get(name string) (devicemgr.Info, error)
	// Send sends a command and waits for its reply. Errors wrap the devicemgr
	// sentinels.
	Send(ctx context.Context, device string, cmd devicemgr.Command) (devicemgr.Reply, error)
	// Abort cancels the command in progress on a device and returns it ("" if
	// none). ctx is the request's: its caller and deadline (a cluster node
	// takes both to the device's owner). Errors wrap the devicemgr sentinels.
	Abort(ctx context.Context, device, reason string) (string, error)
	// WatchStates returns a new watcher of state changes; the server closes it.
	WatchStates() *devicemgr.StateWatch
	// WatchEvery returns a new watcher of every state change up to capacity
	// (devicemgr.StateFeed.WatchEvery); the server closes it.
	WatchEvery(capacity int) *devicemgr.StateWatch
	// Tags returns a device's tags as they are now (ok false: no such device).
	// Subscriptions that select by tag call it for every sample, so it must be
	// cheap; the result is read only.
	Tags(device string) (tags map[string]string, ok bool)
}

// deviceService implements DeviceService once, against plain messages and, for
// streams, a streamOut; the rpc table (Server.rpcs) serves it on both transports.
type deviceService struct {
	devices Devices
	tree    Tree            // an EventSource streams configuration reloads to WatchDevices
	archive DeviceArchive   // for since_ns; nil without archiving
	life    context.Context // ends when the server shuts down
	metrics *metrics
	limits  Limits // ReplayTimeout
	log     *slog.Logger
}

func (s *deviceService) listDevices(_ context.Context, _ *pb.ListDevicesRequest) (*pb.ListDevicesResponse, error) {
	infos := s.sortedDevices()
	resp := &pb.ListDevicesResponse{Devices: make([]*pb.Device, len(infos))}
	for i := range infos {
		resp.Devices[i] = deviceToProto(&infos[i])
	}
	return resp, nil
}

// sortedDevices returns the devices sorted by name, in a copy: List's slice may
// belong to the device manager.
func (s *deviceService) sortedDevices() []devicemgr.Info {
	infos := slices.Clone(s.devices.List())
	slices.SortFunc(infos, func(a, b devicemgr.Info) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

func (s *deviceService) getDevice(_ context.Context, req *pb.GetDeviceRequest) (*pb.GetDeviceResponse, error) {
	if req.GetName() == "" {
		return nil, errField("name", "required")
	}
	info, err := s.devices.Get(req.GetName())
	if err != nil {
		return nil, err
	}
	return &pb.GetDeviceResponse{Device: deviceToProto(&info)}, nil
}

func (s *deviceService) sendCommand(ctx context.Context, req *pb.SendCommandRequest) (*pb.SendCommandResponse, error) {
	if req.GetDevice() == "" {
		return nil, errField("device", "required")
	}
	switch c := req.GetCommand().(type) {
	case nil:
		return nil, errField("command", "one of name or raw is required")
	case *pb.SendCommandRequest_Name:
		if c.Name == "" {
			return nil, errField("name", "required")
		}
	case *pb.SendCommandRequest_Raw:
		if c.Raw == "" {
			return nil, errField("raw", "required")
		}
		if strings.ContainsAny(c.Raw, "\r\n") {
			return nil, errField("raw", "must be one line")
		}
		if len(req.GetArgs()) > 0 {
			return nil, errField("args", "only allowed with name")
		}
	}
	timeout, err := validateTimeout("timeout", req.GetTimeout())
	if err != nil {
		return nil, err
	}
	if err := s.authorizeCommand(ctx, req); err != nil {
		return nil, err
	}
	reply, err := s.devices.Send(ctx, req.GetDevice(), commandFromProto(req, timeout))
	if err != nil {
		return nil, err
	}
	return replyToProto(&reply), nil
}

// authorizeCommand checks the caller's role against the command's role in the
// device model (operator when it has none) or, for a raw line, admin.
func (s *deviceService) authorizeCommand(ctx context.Context, req *pb.SendCommandRequest) error {
	info, err := s.devices.Get(req.GetDevice())
	if err != nil {
		return err
	}
	raw, isRaw := req.GetCommand().(*pb.SendCommandRequest_Raw)
	if isRaw {
		return authorizeCommand(ctx, info.Name, raw.Raw, true, "")
	}
	role := ""
	for _, c := range info.CommandSpecs {
		if c.Name == req.GetName() {
			role = c.Role
			break
		}
	}
	return authorizeCommand(ctx, info.Name, req.GetName(), false, role)
}

func (s *deviceService) abortCommand(ctx context.Context, req *pb.AbortCommandRequest) (*pb.AbortCommandResponse, error) {
	if req.GetDevice() == "" {
		return nil, errField("device", "required")
	}
	if strings.ContainsAny(req.GetReason(), "\r\n") {
		return nil, errField("reason", "must be one line")
	}
	if len(req.GetReason()) > 200 {
		return nil, errField("reason", "at most 200 bytes")
	}
	aborted, err := s.devices.Abort(ctx, req.GetDevice(), req.GetReason())
	if err != nil {
		return nil, err
	}
	return &pb.AbortCommandResponse{Aborted: aborted}, nil
}

// watchDeviceEvery bounds the queue of a WatchDevices stream with since_ns,
// which keeps every change (devicemgr.StateFeed.WatchEvery).
const watchDeviceEvery = 4096

// watchDevices sends the current state of every selected device, then each change,
// and each applied configuration reload, until ctx ends or the server shuts
// down; with since_ns, first the archived changes from then on (replayDevices)
// and then the current states of the devices whose state was not the last one
// replayed. Reloads are not archived as device changes: a replay sends none.
//
// The watch exists before the replay settles the archive and before the
// current states are listed, so every change is in the replay, the list or
// the watch; the join (deviceJoin) sends each once and in order. A device
// the watch holds changes of that are newer than its replay is left out of the
// list: those changes follow in order and end on its current state.
func (s *deviceService) watchDevices(ctx context.Context, req *pb.WatchDevicesRequest, out streamOut[pb.WatchDevicesResponse]) error {
	sel, err := compileGlobs("devices", req.GetDevices())
	if err != nil {
		return err
	}
	since := req.GetSinceNs()
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("WatchDevices")()

	w := s.devices.WatchStates()
	if since > 0 {
		w = s.devices.WatchEvery(watchDeviceEvery)
	}
	defer w.Close()
	reloads := newReloadWatch(s.tree)
	defer reloads.close()
	if err := out.header(); err != nil {
		return err
	}
	j := newDeviceJoin()
	send := func(info *devicemgr.Info) error {
		if !sel.match(info.Name) {
			return nil
		}
		msg := deviceToProto(info)
		if !j.fresh(info, msg, false) {
			return nil
		}
		return out.send(&pb.WatchDevicesResponse{Device: msg, TimestampNs: unixNano(info.ChangedAt), Removed: info.Removed,
			Skipped: w.Skipped()})
	}
	if since > 0 {
		end, err := s.replayDevices(ctx, since, sel, j, out)
		if err != nil {
			return err
		}
		if err := out.send(&pb.WatchDevicesResponse{ReplayEnd: end, Skipped: w.Skipped()}); err != nil {
			return err
		}
	}
	infos := s.sortedDevices()
	changes := w.Take()
	newer := map[string]bool{} // devices with changes newer than their replay
	for i := range changes {
		if us, ok := j.replayed[changes[i].Name]; !ok || changes[i].ChangedAt.UnixMicro() > us {
			newer[changes[i].Name] = true
		}
	}
	for i := range infos {
		if !newer[infos[i].Name] {
			if err := send(&infos[i]); err != nil {
				return err
			}
		}
	}
	for {
		// The changes a reload made go before the reload itself: they are
		// taken first.
		for i := range changes {
			if err := send(&changes[i]); err != nil {
				return err
			}
		}
		for _, r := range reloads.take() {
			if err := out.send(&pb.WatchDevicesResponse{Reload: reloadToProto(r), TimestampNs: unixNano(r.Time)}); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-w.Ready():
		case <-reloads.ready():
		}
		changes = w.Take()
	}
}
