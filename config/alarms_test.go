package config_test

import (
	"strings"
	"testing"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/config"
)

func TestAlarmsSection(t *testing.T) {
	good := `
devices:
  - {name: env-01, driver: lines, address: "127.0.0.1:6000", channels: [{name: temp}]}
alarms:
  - {device: "psu-*", channel: voltage, group: power, hihi: 50, high: 40, low: 5, lolo: 1, hysteresis: 0.5, delay: 2s}
  - {device: env-01, channel: temp, high: 30, high_severity: major, stale_after: 5s}
`
	c, err := config.Parse("good.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	rules := c.AlarmRules()
	if len(rules) != 2 || rules[0].Limits.HiHi.Severity != alarm.Major || rules[0].Limits.High.Severity != alarm.Minor ||
		rules[1].Limits.High.Severity != alarm.Major || rules[0].Group != "power" || !rules[0].Matches("psu-03", "voltage") {
		t.Fatalf("rules = %+v", rules)
	}
	bad := `
devices: []
alarms:
  - {device: "psu-*", channel: voltage, hihi: 10, high: 40}
  - {device: "[", channel: voltage, low_severity: major}
  - {channel: x, hysteresis: -1, high: 1, high_severity: loud}
`
	_, err = config.Parse("bad.yaml", []byte(bad))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"bad.yaml:4: alarms[0].hihi: must be >= high (40), got 10",
		"bad.yaml:5: alarms[1].device: bad glob pattern",
		"alarms[1].low_severity: set without low",
		"alarms[2].device: required",
		`alarms[2].high_severity: unknown severity "loud"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
