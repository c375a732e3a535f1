package server_test

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/telemetry"
)

// An alarm and a transition survive their wire form field for field
// (durations in the API's milliseconds), an infinite reading included; a
// damaged or unknown one is refused.
func TestAlarmWireRoundTrip(t *testing.T) {
	at := func(s int64) time.Time { return time.Unix(1_800_000_000+s, 123456789) }
	a := alarm.Alarm{Device: "psu-1", Channel: "voltage", Group: "power", Condition: alarm.HiHi, Severity: alarm.Major,
		Latched: alarm.Major, Acked: true, Since: at(1), Value: math.Inf(1), HasValue: true, Quality: telemetry.Good,
		Message: "value +Inf >= HIHI 20", AckedBy: "ann", AckComment: "seen", AckedAt: at(2),
		ShelvedUntil: at(3), ShelvedBy: "bob", ShelveComment: "maintenance",
		Limits: alarm.Limits{HiHi: alarm.Threshold{Value: 20, Severity: alarm.Major}, High: alarm.Threshold{Value: 15, Severity: alarm.Minor},
			Low: alarm.Threshold{Value: 4, Severity: alarm.Minor}, Hysteresis: 0.2, Delay: time.Second, DelaySamples: 3,
			StaleAfter: 5 * time.Second, Setpoint: "setpoint", Tolerance: 0.5, ReadbackSeverity: alarm.Major, ReadbackDelay: 2 * time.Second}}
	got, err := server.DecodeAlarm(server.EncodeAlarm(&a))
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("alarm round trip:\n got %+v, %v\nwant %+v", got, err, a)
	}
	quiet := alarm.Alarm{Device: "tc-1", Channel: "temp", Quality: telemetry.Timeout}
	if got, err := server.DecodeAlarm(server.EncodeAlarm(&quiet)); err != nil || !reflect.DeepEqual(got, quiet) {
		t.Errorf("quiet alarm round trip: %+v, %v", got, err)
	}
	tr := alarm.Transition{Time: at(4), Event: alarm.Acked, Alarm: a, Who: "ann", Comment: "seen"}
	if got, err := server.DecodeTransition(server.EncodeTransition(&tr)); err != nil || !reflect.DeepEqual(got, tr) {
		t.Errorf("transition round trip:\n got %+v, %v\nwant %+v", got, err, tr)
	}
	if got, err := server.DecodeLimits(server.EncodeLimits(&a.Limits)); err != nil || !reflect.DeepEqual(got, a.Limits) {
		t.Errorf("limits round trip: %+v, %v", got, err)
	}
	if _, err := server.DecodeTransition([]byte{0xff, 0xff}); err == nil {
		t.Error("a damaged transition decoded")
	}
	unknown := tr
	unknown.Event = 99
	if _, err := server.DecodeTransition(server.EncodeTransition(&unknown)); err == nil {
		t.Error("a transition with an unknown event decoded")
	}
}
