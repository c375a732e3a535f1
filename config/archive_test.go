package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/config"
)

const archiveYAML = `questdb:
  address: 127.0.0.1:9000
  spool_dir: /tmp/spool
  spool_max_bytes: %MAX%
devices:
  - name: psu
    address: 127.0.0.1:5025
    driver: scpi
    channels:
      - {name: v, query: "MEAS:VOLT?", period: 1s, archive_deadband: %DB%, archive_heartbeat: %HB%}
`

func archiveConfig(max, db, hb string) string {
	return strings.NewReplacer("%MAX%", max, "%DB%", db, "%HB%", hb).Replace(archiveYAML)
}

func TestArchiveSettings(t *testing.T) {
	c, err := config.Parse("a.yaml", []byte(archiveConfig("2097152", "0.5", "30s")))
	if err != nil {
		t.Fatal(err)
	}
	q := c.QuestDB
	if q.SpoolDir != "/tmp/spool" || q.SpoolMaxBytes != 2097152 || q.SpoolFsync == nil || !*q.SpoolFsync {
		t.Errorf("questdb = %+v, want the spool settings with fsync on by default", q)
	}
	ch := c.Devices[0].Channels[0]
	if ch.ArchiveDeadband != 0.5 || time.Duration(ch.ArchiveHeartbeat) != 30*time.Second {
		t.Errorf("channel = %+v", ch)
	}
	for _, tc := range []struct{ max, db, hb, want string }{
		{"1000", "0", "0s", "a.yaml:4: questdb.spool_max_bytes: must be at least 1048576"},
		{"2097152", "-1", "0s", "devices[0].channels[0].archive_deadband: must be >= 0"},
		{"2097152", "0", "-5s", "devices[0].channels[0].archive_heartbeat: must be >= 0"},
	} {
		_, err := config.Parse("a.yaml", []byte(archiveConfig(tc.max, tc.db, tc.hb)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("max %s deadband %s heartbeat %s: %v, want %q", tc.max, tc.db, tc.hb, err, tc.want)
		}
	}
}
