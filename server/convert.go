package server

import (
	"maps"
	"math"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// This file holds every conversion between domain types and generated messages.

// samplesToProto converts a batch. Messages, and the values of float samples (the
// common case), are allocated in slabs: a batch costs a handful of allocations
// instead of three per sample.
func samplesToProto(in []telemetry.Sample) []*pb.Sample {
	out := make([]*pb.Sample, len(in))
	msgs := make([]pb.Sample, len(in))
	floats := 0
	for i := range in {
		if in[i].Value.Kind == telemetry.KindFloat {
			floats++
		}
	}
	vals := make([]pb.Value, floats)
	doubles := make([]pb.Value_DoubleValue, floats)
	for i := range in {
		s := &in[i]
		m := &msgs[i]
		m.Device = s.Device
		m.Channel = s.Channel
		m.TimestampNs = s.TimeNs
		m.Seq = s.Seq
		if s.Value.Kind == telemetry.KindFloat {
			floats--
			doubles[floats].DoubleValue = s.Value.F
			vals[floats].Kind = &doubles[floats]
			m.Value = &vals[floats]
		} else {
			m.Value = valueToProto(s.Value)
		}
		m.Quality = qualityToProto(s.Quality)
		m.Error = s.Err
		out[i] = m
	}
	return out
}

// valueToProto converts a value; KindNone (a bad-quality sample) becomes nil.
func valueToProto(v telemetry.Value) *pb.Value {
	switch v.Kind {
	case telemetry.KindFloat:
		return &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: v.F}}
	case telemetry.KindInt:
		return &pb.Value{Kind: &pb.Value_IntValue{IntValue: v.I}}
	case telemetry.KindString:
		return &pb.Value{Kind: &pb.Value_StringValue{StringValue: v.S}}
	case telemetry.KindBool:
		return &pb.Value{Kind: &pb.Value_BoolValue{BoolValue: v.B}}
	default:
		return nil
	}
}

func valuesToProto(in []telemetry.Value) []*pb.Value {
	if len(in) == 0 {
		return nil
	}
	out := make([]*pb.Value, len(in))
	for i, v := range in {
		out[i] = valueToProto(v)
		if out[i] == nil {
			out[i] = &pb.Value{} // keep positions: an unset kind stands for "no value"
		}
	}
	return out
}

func qualityToProto(q telemetry.Quality) pb.Quality {
	switch q {
	case telemetry.Good:
		return pb.Quality_QUALITY_GOOD
	case telemetry.CommError:
		return pb.Quality_QUALITY_COMM_ERROR
	case telemetry.Timeout:
		return pb.Quality_QUALITY_TIMEOUT
	case telemetry.ParseError:
		return pb.Quality_QUALITY_PARSE_ERROR
	case telemetry.Disconnected:
		return pb.Quality_QUALITY_DISCONNECTED
	default:
		return pb.Quality_QUALITY_UNSPECIFIED
	}
}

func deviceStateToProto(s devicemgr.State) pb.DeviceState {
	switch s {
	case devicemgr.Connecting:
		return pb.DeviceState_DEVICE_STATE_CONNECTING
	case devicemgr.Connected:
		return pb.DeviceState_DEVICE_STATE_CONNECTED
	case devicemgr.Backoff:
		return pb.DeviceState_DEVICE_STATE_BACKOFF
	case devicemgr.Stopped:
		return pb.DeviceState_DEVICE_STATE_STOPPED
	default:
		return pb.DeviceState_DEVICE_STATE_UNSPECIFIED
	}
}

// deviceToProto converts a device's configuration and state.
func deviceToProto(in *devicemgr.Info) *pb.Device {
	d := &pb.Device{
		Name:          in.Name,
		Address:       in.Address,
		Driver:        in.Driver,
		State:         deviceStateToProto(in.State),
		LastError:     in.LastError,
		Reconnections: toUint32(in.Restarts),
		//lint:ignore SA1019 the deprecated count stays filled for older clients
		RestartCount:   toUint32(in.Restarts),
		Tags:           maps.Clone(in.Tags),
		ConnectedSince: timeToProto(in.ConnectedSince),
		NextAttempt:    timeToProto(in.NextAttempt),
		Identity:       in.Identity,
		Commands:       append([]string(nil), in.Commands...),
		CommandInfo:    commandInfoToProto(in.CommandSpecs),
		Node:           in.Node,
	}
	if len(in.Channels) > 0 {
		d.Channels = make([]*pb.Channel, len(in.Channels))
		for i, c := range in.Channels {
			d.Channels[i] = &pb.Channel{Name: c.Name, Query: c.Query, Unit: c.Unit}
			if c.Period != 0 {
				d.Channels[i].Period = durationpb.New(c.Period)
			}
		}
	}
	return d
}

// timeToProto leaves a zero time unset, as the contract says ("unset when ...").
func timeToProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// unixNano returns t in nanoseconds since the epoch, zero for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// commandFromProto builds a devicemgr.Command from a validated request.
func commandFromProto(req *pb.SendCommandRequest, timeout time.Duration) devicemgr.Command {
	cmd := devicemgr.Command{Timeout: timeout}
	switch c := req.GetCommand().(type) {
	case *pb.SendCommandRequest_Name:
		cmd.Name = c.Name
		cmd.Args = append([]string(nil), req.GetArgs()...)
	case *pb.SendCommandRequest_Raw:
		cmd.Raw = c.Raw
	}
	return cmd
}

func replyToProto(r *devicemgr.Reply) *pb.SendCommandResponse {
	return &pb.SendCommandResponse{Reply: r.Text, Values: valuesToProto(r.Values)}
}

func processStateToProto(s supervisor.State) pb.ProcessState {
	switch s {
	case supervisor.Starting:
		return pb.ProcessState_PROCESS_STATE_STARTING
	case supervisor.Running:
		return pb.ProcessState_PROCESS_STATE_RUNNING
	case supervisor.BackingOff:
		return pb.ProcessState_PROCESS_STATE_BACKOFF
	case supervisor.Stopping:
		return pb.ProcessState_PROCESS_STATE_STOPPING
	case supervisor.Stopped:
		return pb.ProcessState_PROCESS_STATE_STOPPED
	case supervisor.Leaked:
		return pb.ProcessState_PROCESS_STATE_LEAKED
	default:
		return pb.ProcessState_PROCESS_STATE_UNSPECIFIED
	}
}

// nodeToProto converts a supervision tree snapshot, recursively.
func nodeToProto(n *supervisor.Node) *pb.Process {
	p := &pb.Process{
		Id:            n.ID,
		Kind:          n.Kind,
		Strategy:      n.Strategy,
		Restart:       n.Restart,
		State:         processStateToProto(n.State),
		Restarts:      toUint32(n.Restarts),
		LastExit:      n.LastExit,
		StartedNs:     unixNano(n.Started),
		NextRestartNs: unixNano(n.NextRestart),
		MailboxDepth:  toUint32(n.MailboxDepth),
		UptimeNs:      int64(n.Uptime),
		Significant:   n.Significant,
		InProgress:    n.InProgress,
		Status:        n.Status,
	}
	if len(n.Children) > 0 {
		p.Children = make([]*pb.Process, len(n.Children))
		for i := range n.Children {
			p.Children[i] = nodeToProto(&n.Children[i])
		}
	}
	return p
}

// toUint32 clamps a count into the contract's uint32.
func toUint32(n int) uint32 {
	switch {
	case n < 0:
		return 0
	case uint64(n) > math.MaxUint32:
		return math.MaxUint32
	default:
		return uint32(n)
	}
}

// eventKindToProto maps a supervision event kind to the contract's enum.
func eventKindToProto(k supervisor.EventKind) pb.SupervisionEventKind {
	switch k {
	case supervisor.EventStarting:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTING
	case supervisor.EventStopped:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STOPPED
	case supervisor.EventAdded:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_ADDED
	case supervisor.EventRemoved:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_REMOVED
	case supervisor.EventStarted:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED
	case supervisor.EventExited:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_EXITED
	case supervisor.EventRestartScheduled:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_RESTART_SCHEDULED
	case supervisor.EventLeaked:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_LEAKED
	case supervisor.EventAutoShutdown:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_AUTO_SHUTDOWN
	case supervisor.EventStatus:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STATUS
	case supervisor.EventReconfigured:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_RECONFIGURED
	default:
		return pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_UNSPECIFIED
	}
}

// eventToProto converts one supervision event.
func eventToProto(ev *supervisor.Event) *pb.SupervisionEvent {
	var reload *pb.ConfigReload
	if r := reloadOf(ev.Detail); r != nil {
		reload = reloadToProto(r)
	}
	return &pb.SupervisionEvent{
		Reload:        reload,
		Seq:           ev.Seq,
		TimestampNs:   unixNano(ev.Time),
		Path:          ev.Path,
		Child:         ev.Child,
		Kind:          eventKindToProto(ev.Kind),
		Reason:        ev.Reason,
		Restarts:      toUint32(ev.Restarts),
		NextRestartNs: unixNano(ev.NextRestart),
	}
}

// commandInfoToProto describes a device's named commands and their arguments.
func commandInfoToProto(specs []devicemgr.CommandSpec) []*pb.CommandInfo {
	if len(specs) == 0 {
		return nil
	}
	out := make([]*pb.CommandInfo, len(specs))
	for i, c := range specs {
		ci := &pb.CommandInfo{
			Name:     c.Name,
			Role:     c.Role,
			HasReply: c.HasReply(),
			Readback: c.Readback,
		}
		for _, a := range c.Args {
			ai := &pb.ArgumentInfo{Name: a.Name, Type: a.Type, Choices: append([]string(nil), a.Values...), Unit: a.Unit}
			if ai.Type == "" {
				ai.Type = "float"
			}
			if ai.Type == "string" {
				ai.Pattern = a.EffectivePattern()
			}
			if a.HasMin {
				ai.Min = proto.Float64(a.Min)
			}
			if a.HasMax {
				ai.Max = proto.Float64(a.Max)
			}
			ci.Args = append(ci.Args, ai)
		}
		out[i] = ci
	}
	return out
}
