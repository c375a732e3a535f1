package alarm

import (
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// SystemGroup is the alarm group of the server's own health.
const SystemGroup = "system"

// SystemRules are the alarms on the server's own health, the channels of
// telemetry.SystemDevice:
//
//   - an archive's spool (ingest.SpoolMonitor): MINOR at 80 % full (the writer
//     warns there), MAJOR when full (new samples then wait in memory, and
//     past that the devices are held back);
//   - damage found in a spool (skipped, with a copy under quarantine/): MAJOR;
//   - an archive stopped because its spool cannot be used: MAJOR;
//   - the hub holding publishers back because a lossless consumer is at its
//     bound (telemetry.BackpressureChannel): MAJOR.
func SystemRules() []Rule {
	sys := []string{telemetry.SystemDevice}
	atLeastOne := Limits{HiHi: Threshold{Value: 1, Severity: Major}}
	return []Rule{
		{Devices: sys, Channels: []string{"*" + ingest.SpoolFillSuffix}, Group: SystemGroup, Limits: Limits{
			High:       Threshold{Value: 0.8, Severity: Minor},
			HiHi:       Threshold{Value: 1.0, Severity: Major},
			Hysteresis: 0.02,
		}},
		{Devices: sys, Channels: []string{"*" + ingest.SpoolDamageSuffix}, Group: SystemGroup, Limits: atLeastOne},
		{Devices: sys, Channels: []string{"*" + ingest.StoppedSuffix}, Group: SystemGroup, Limits: atLeastOne},
		{Devices: sys, Channels: []string{telemetry.BackpressureChannel}, Group: SystemGroup, Limits: atLeastOne},
	}
}
