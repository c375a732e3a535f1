package server

import (
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

func TestQualityAndStateMaps(t *testing.T) {
	for q, want := range map[telemetry.Quality]pb.Quality{
		telemetry.Good:         pb.Quality_QUALITY_GOOD,
		telemetry.CommError:    pb.Quality_QUALITY_COMM_ERROR,
		telemetry.Timeout:      pb.Quality_QUALITY_TIMEOUT,
		telemetry.ParseError:   pb.Quality_QUALITY_PARSE_ERROR,
		telemetry.Disconnected: pb.Quality_QUALITY_DISCONNECTED,
		telemetry.Quality(99):  pb.Quality_QUALITY_UNSPECIFIED,
	} {
		if got := qualityToProto(q); got != want {
			t.Errorf("quality %v -> %v, want %v", q, got, want)
		}
	}
	for s, want := range map[devicemgr.State]pb.DeviceState{
		devicemgr.Connecting: pb.DeviceState_DEVICE_STATE_CONNECTING,
		devicemgr.Connected:  pb.DeviceState_DEVICE_STATE_CONNECTED,
		devicemgr.Backoff:    pb.DeviceState_DEVICE_STATE_BACKOFF,
		devicemgr.Stopped:    pb.DeviceState_DEVICE_STATE_STOPPED,
		0:                    pb.DeviceState_DEVICE_STATE_UNSPECIFIED,
	} {
		if got := deviceStateToProto(s); got != want {
			t.Errorf("device state %v -> %v, want %v", s, got, want)
		}
	}
	for s, want := range map[supervisor.State]pb.ProcessState{
		supervisor.Starting:   pb.ProcessState_PROCESS_STATE_STARTING,
		supervisor.Running:    pb.ProcessState_PROCESS_STATE_RUNNING,
		supervisor.BackingOff: pb.ProcessState_PROCESS_STATE_BACKOFF,
		supervisor.Stopping:   pb.ProcessState_PROCESS_STATE_STOPPING,
		supervisor.Stopped:    pb.ProcessState_PROCESS_STATE_STOPPED,
		supervisor.Leaked:     pb.ProcessState_PROCESS_STATE_LEAKED,
		0:                     pb.ProcessState_PROCESS_STATE_UNSPECIFIED,
	} {
		if got := processStateToProto(s); got != want {
			t.Errorf("process state %v -> %v, want %v", s, got, want)
		}
	}
	for _, tc := range []struct {
		in   int
		want uint32
	}{{-1, 0}, {0, 0}, {7, 7}, {1 << 40, 1<<32 - 1}} {
		if got := toUint32(tc.in); got != tc.want {
			t.Errorf("toUint32(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestValuesKeepPositions(t *testing.T) {
	got := valuesToProto([]telemetry.Value{telemetry.Int(1), {}, telemetry.String("x")})
	if len(got) != 3 || got[0].GetIntValue() != 1 || got[1].GetKind() != nil || got[2].GetStringValue() != "x" {
		t.Fatalf("valuesToProto = %v", got)
	}
}

// domainBatch returns n samples of 50 channels, one in ten of bad quality.
func domainBatch(n int) []telemetry.Sample {
	out := make([]telemetry.Sample, n)
	for i := range out {
		out[i] = telemetry.Sample{
			Device:  "psu" + strconv.Itoa(i%10),
			Channel: "ch" + strconv.Itoa(i%5),
			TimeNs:  1_795_694_400_000_000_000 + int64(i)*1_000_000,
			Seq:     uint64(1000 + i),
			Value:   telemetry.Float(float64(i) * 0.001),
		}
		if i%10 == 9 {
			out[i].Value, out[i].Quality, out[i].Err = telemetry.Value{}, telemetry.Timeout, "no reply within 500ms"
		}
	}
	return out
}

// BenchmarkSubscribeBatch measures what Subscribe does per batch of 1000 samples
// before the transport: convert from domain samples, then proto-encode.
func BenchmarkSubscribeBatch(b *testing.B) {
	samples := domainBatch(1000)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		msg := &pb.SubscribeResponse{Samples: samplesToProto(samples), Dropped: 42}
		data, err := proto.Marshal(msg)
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "bytes/batch")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/sample")
}

// TestCommandInfoNamesPatternsAndUnits: a form can check a string argument
// before sending it: its pattern (the configured one, or the server's safe
// default) and a numeric argument's unit are in the command info.
func TestCommandInfoNamesPatternsAndUnits(t *testing.T) {
	got := commandInfoToProto([]devicemgr.CommandSpec{{
		Name: "label", Template: "DISP:TEXT {text};RATE {rate};MODE {mode}",
		Args: []devicemgr.ArgSpec{
			{Name: "text", Type: "string"},
			{Name: "rate", Unit: "ml/min", Min: 0, HasMin: true},
			{Name: "mode", Type: "string", Pattern: "[A-Z]{1,8}"},
		},
	}})
	want := []*pb.CommandInfo{{Name: "label", Args: []*pb.ArgumentInfo{
		{Name: "text", Type: "string", Pattern: devicemgr.DefaultStringPattern},
		{Name: "rate", Type: "float", Min: proto.Float64(0), Unit: "ml/min"},
		{Name: "mode", Type: "string", Pattern: "[A-Z]{1,8}"},
	}}}
	if len(got) != 1 || !proto.Equal(got[0], want[0]) {
		t.Fatalf("command info = %v, want %v", got, want)
	}
}
