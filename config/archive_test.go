package config_test

import (
	"path/filepath"
	"testing"

	"github.com/switchyard/switchyard/config"
)

func TestArchiveTranslation(t *testing.T) {
	off := false
	q := config.QuestDB{Address: "127.0.0.1:9000", Table: "samples", SpoolDir: "/var/spool/sy", SpoolFsync: &off, SpoolMaxBytes: 1 << 20}
	if got := q.SideTable("alarm_events"); got != "alarm_events" {
		t.Errorf("beside the default table: %q", got)
	}
	q2 := q
	q2.Table = "test_x"
	if got := q2.SideTable("alarm_events"); got != "test_x_alarm_events" {
		t.Errorf("beside test_x: %q, want test_x_alarm_events", got)
	}
	o := q.SideArchiveOptions("alarm_events", "alarms")
	if o.Table != "alarm_events" || o.SpoolDir != filepath.Join("/var/spool/sy", "alarms") || !o.SpoolNoFsync || o.SpoolMaxBytes != 1<<20 {
		t.Errorf("side options %+v", o)
	}
	if dirs := q.SpoolDirs("events", "alarms"); len(dirs) != 3 || dirs[2] != "/var/spool/sy/alarms" {
		t.Errorf("spool dirs %v", dirs)
	}
	q.SpoolDir = ""
	if o := q.SideArchiveOptions("t", "alarms"); o.SpoolDir != "" || q.SpoolDirs("events") != nil {
		t.Errorf("without a spool: %+v", o)
	}
}
