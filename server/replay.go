package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
)

// AlarmArchive is what WatchAlarms replays from (since_ns); *alarm.History is
// one. Both methods are safe for concurrent use.
type AlarmArchive interface {
	// Settle returns once every transition emitted before the call is
	// readable.
	Settle(ctx context.Context) error
	// Replay hands the archived transitions from fromNs on to each, in order.
	Replay(ctx context.Context, fromNs int64, opts ingest.ReplayOptions, each func([]alarm.Transition) error) error
}

// DeviceArchive is what WatchDevices replays from (since_ns);
// *ingest.DeviceHistory is one. Both methods are safe for concurrent use.
type DeviceArchive interface {
	// Settle returns once every state change published before the call is
	// readable.
	Settle(ctx context.Context) error
	// Replay hands the archived state changes from fromNs on to each, in
	// order, and returns how many states the archive itself missed.
	Replay(ctx context.Context, fromNs int64, opts ingest.ReplayOptions, each func([]ingest.DeviceChange) error) (missed uint64, err error)
}

// noReplay is the reason of a replay without an archive to read.
const noReplay = "this server has no archive to replay (none configured, or a cluster node)"

// noOrderedReplay is the reason of a WatchAlarms replay on a cluster node,
// whose watch merges every owner's transitions out of time order.
const noOrderedReplay = "a cluster node does not replay alarm transitions: its watch merges every node's " +
	"transitions from the cluster's stream, out of time order, and its archive holds only its own engine's"

// future reports whether since is later than anything the archive can hold
// yet (by more than a minute, for transition times pushed ahead of the clock by
// a burst): such a replay is complete at once, without waiting for the
// archive. A client that starts a watch it may resume sends one, for the
// replay's end (and live_after_ns) and the watch that keeps every change.
func future(since int64) bool { return since > time.Now().Add(time.Minute).UnixNano() }

// replayWindow runs read (a watch's Settle and Replay) under the replay's time
// bound, and says how the replay ended: complete, or not with the reason. It
// returns an error only when the stream itself ended (ctx), or each failed to
// send; an archive that fails or takes too long makes an incomplete replay,
// logged, and the watch goes live.
func replayWindow(ctx context.Context, log *slog.Logger, timeout time.Duration, what string, read func(ctx context.Context) error) (*pb.ReplayEnd, error) {
	rctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("the archive did not answer within %s", timeout))
	defer cancel()
	err := read(rctx)
	switch {
	case err == nil:
		return &pb.ReplayEnd{Complete: true}, nil
	case ctx.Err() != nil:
		return nil, context.Cause(ctx)
	case errors.Is(err, errSend):
		return nil, err
	}
	reason := "the archive could not be read: " + err.Error()
	if rctx.Err() != nil {
		reason = context.Cause(rctx).Error()
	}
	log.Warn("watch goes live without its replay", "watch", what, "reason", reason)
	return &pb.ReplayEnd{Reason: reason}, nil
}

// errSend marks a failure to send to the client during a replay: it ends the
// stream, where an archive's failure only ends the replay.
var errSend = errors.New("send")

// sendErr wraps a send error as errSend (nil stays nil).
func sendErr(err error) error {
	if err == nil {
		return nil
	}
	return errors.Join(errSend, err)
}

// replayAlarms sends the archived transitions from since on that f selects,
// marked replayed, and returns the replay's end and the microsecond of the
// newest one sent (-1 if none): live transitions not newer were replayed.
func (s *alarmService) replayAlarms(ctx context.Context, since int64, f alarmFilter, out streamOut[pb.WatchAlarmsResponse]) (*pb.ReplayEnd, int64, error) {
	newest := int64(-1)
	if future(since) {
		return &pb.ReplayEnd{Complete: true}, newest, nil
	}
	if s.archive == nil {
		return &pb.ReplayEnd{Reason: noReplay}, newest, nil
	}
	var n uint64
	end, err := replayWindow(ctx, s.log, s.limits.ReplayTimeout, "alarms", func(ctx context.Context) error {
		if err := s.archive.Settle(ctx); err != nil {
			return err
		}
		return s.archive.Replay(ctx, since, ingest.ReplayOptions{}, func(ts []alarm.Transition) error {
			for i := range ts {
				if !f.match(&ts[i].Alarm) {
					continue
				}
				if err := out.send(&pb.WatchAlarmsResponse{Transition: transitionToProto(&ts[i]), Replayed: true}); err != nil {
					return sendErr(err)
				}
				n++
				newest = max(newest, ts[i].Time.UnixMicro())
			}
			return nil
		})
	})
	if end != nil {
		end.Replayed = n
	}
	return end, newest, err
}

// deviceJoin keeps what a WatchDevices stream sent of each device, so that
// the replay, the current states and the live changes send each change once.
// Skipped: a change older than the one sent, the very same message, and the
// change a replayed message stood for (same microsecond; the live message of it
// has the details the archive lacks). A device updated in place (same change,
// other details) after a whole message of it is sent again.
type deviceJoin struct {
	sent map[string]sentDevice
	// replayed is the microsecond of each device's last replayed change.
	replayed map[string]int64
}

type sentDevice struct {
	us      int64 // ChangedAt, µs
	msg     *pb.Device
	partial bool // a replayed change, with what the archive holds
}

func newDeviceJoin() *deviceJoin {
	return &deviceJoin{sent: map[string]sentDevice{}, replayed: map[string]int64{}}
}

// fresh reports whether info (msg) is news to the client, and if so notes it
// as sent; partial says msg is a replayed change made from the archive.
func (j *deviceJoin) fresh(info *devicemgr.Info, msg *pb.Device, partial bool) bool {
	us := info.ChangedAt.UnixMicro()
	if last, ok := j.sent[info.Name]; ok && (us < last.us || us == last.us && last.partial || proto.Equal(msg, last.msg)) {
		return false
	}
	j.sent[info.Name] = sentDevice{us: us, msg: msg, partial: partial}
	return true
}

// replayDevices sends the archived state changes from since on of the
// devices sel selects, marked replayed, and returns the replay's end. The last
// replayed change of a device that is still its state is sent as the whole
// current device.
func (s *deviceService) replayDevices(ctx context.Context, since int64, sel globs, j *deviceJoin, out streamOut[pb.WatchDevicesResponse]) (*pb.ReplayEnd, error) {
	if future(since) {
		return &pb.ReplayEnd{Complete: true}, nil
	}
	if s.archive == nil {
		return &pb.ReplayEnd{Reason: noReplay}, nil
	}
	var changes []ingest.DeviceChange
	var missed uint64
	end, err := replayWindow(ctx, s.log, s.limits.ReplayTimeout, "devices", func(ctx context.Context) error {
		if err := s.archive.Settle(ctx); err != nil {
			return err
		}
		var err error
		missed, err = s.archive.Replay(ctx, since, ingest.ReplayOptions{}, func(cs []ingest.DeviceChange) error {
			for _, c := range cs {
				if sel.match(c.Device) {
					changes = append(changes, c)
				}
			}
			return nil
		})
		return err
	})
	if err != nil || !end.Complete {
		return end, err
	}
	current := map[string]devicemgr.Info{}
	for _, info := range s.devices.List() {
		current[info.Name] = info
	}
	for i, r := range replayedInfos(changes, current) {
		msg := deviceToProto(&r.Info)
		if !j.fresh(&r.Info, msg, !r.whole) {
			continue
		}
		info := &r.Info
		j.replayed[info.Name] = changes[i].ChangedAt.UnixMicro()
		if err := out.send(&pb.WatchDevicesResponse{Device: msg, TimestampNs: unixNano(info.ChangedAt), Removed: info.Removed,
			Replayed: true}); err != nil {
			return nil, err
		}
		end.Replayed++
	}
	end.Missed = missed
	return end, nil
}

// replayedInfos turns archived changes into devices: each device's
// configuration now (current) with the change's state. The last change of a
// device that is its current state (same state, same microsecond) is the
// whole current device. The last change of a device the server no longer has,
// when it is STOPPED, is that device's final state: Removed (a reload removed
// it, or the server restarted without it). Reconnection counts come from the archive's
// reconnections: carried forward from each, one less before the first; with
// none, the device's count now.
func replayedInfos(changes []ingest.DeviceChange, current map[string]devicemgr.Info) []replayedInfo {
	last := map[string]int{}
	first := map[string]int{} // the count of a device's first reconnection in the replay
	for i, c := range changes {
		last[c.Device] = i
		if _, ok := first[c.Device]; !ok && c.Reconnected {
			first[c.Device] = c.Restarts
		}
	}
	carry := map[string]int{}
	out := make([]replayedInfo, len(changes))
	for i, c := range changes {
		cur, known := current[c.Device]
		if known && last[c.Device] == i && cur.State.String() == c.State && cur.ChangedAt.UnixMicro() == c.ChangedAt.UnixMicro() {
			out[i] = replayedInfo{Info: cur, whole: true}
			continue
		}
		info := devicemgr.Info{Name: c.Device}
		if known {
			info = cur
		}
		info.State = parseDeviceState(c.State)
		info.LastError, info.ChangedAt = c.LastError, c.ChangedAt
		info.Identity, info.ConnectedSince, info.NextAttempt = c.Identity, time.Time{}, c.NextAttempt
		if c.State == devicemgr.Connected.String() {
			info.ConnectedSince = c.ChangedAt
		}
		info.Removed = !known && last[c.Device] == i && info.State == devicemgr.Stopped
		if c.Reconnected {
			carry[c.Device] = c.Restarts
		}
		if n, ok := carry[c.Device]; ok {
			info.Restarts = n
		} else if n, ok := first[c.Device]; ok {
			info.Restarts = max(0, n-1)
		}
		out[i] = replayedInfo{Info: info}
	}
	return out
}

// replayedInfo is a replayed change as a device: with what the archive holds,
// or whole (the device's current state).
type replayedInfo struct {
	devicemgr.Info
	whole bool
}

// parseDeviceState is the inverse of devicemgr.State.String (0 if unknown).
func parseDeviceState(s string) devicemgr.State {
	for st := devicemgr.Connecting; st <= devicemgr.Stopped; st++ {
		if st.String() == s {
			return st
		}
	}
	return 0
}
