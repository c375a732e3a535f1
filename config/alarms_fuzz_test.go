package config_test

import (
	"testing"

	"github.com/switchyard/switchyard/config"
)

// FuzzParseAlarms: any configuration text either fails with an error or yields
// alarm rules whose limits are valid; it never panics.
func FuzzParseAlarms(f *testing.F) {
	f.Add("devices: []\nalarms:\n  - {device: \"psu-*\", channel: voltage, hihi: 50, high: 40, low: 5, lolo: 1, hysteresis: 0.5, delay: 2s}\n")
	f.Add("devices: []\nalarms:\n  - {device: x, channel: y, high: 1, high_severity: invalid, stale_after: 1s, setpoint: sp, tolerance: 0.1}\n")
	f.Add("alarms: [{device: '[', channel: '', hihi: .nan}]\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := config.Parse("fuzz.yaml", []byte(text))
		if err != nil {
			return
		}
		for i, r := range c.AlarmRules() {
			if err := r.Validate(); err != nil {
				t.Fatalf("accepted alarm %d is invalid: %v", i, err)
			}
		}
	})
}
