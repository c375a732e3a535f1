package config

import (
	"path/filepath"
	"time"

	"github.com/switchyard/switchyard/ingest"
)

// The translation of the questdb section into the archives' options. The
// caller adds what is not configuration (logger, metrics registry).

// ArchiveOptions are the options of the sample archive: table, spool, dead
// letters and the channels' archive filters.
func (c *Config) ArchiveOptions() ingest.Options {
	q := c.QuestDB
	return ingest.Options{Table: q.Table, SpoolDir: q.SpoolDir, SpoolNoFsync: q.SpoolFsync != nil && !*q.SpoolFsync,
		SpoolMaxBytes: q.SpoolMaxBytes, DeadLetterPath: q.DeadLetter, Filter: c.ArchiveFilter()}
}

// WideArchiveOptions are the options of the sample archive of the wide layout
// (for the devices WideDevices names): its table is questdb.table + "_wide",
// its spool spool_dir/wide; the rest as ArchiveOptions.
func (c *Config) WideArchiveOptions() ingest.Options {
	opts := c.ArchiveOptions()
	opts.Table = c.QuestDB.Table + ingest.WideSuffix
	if opts.SpoolDir != "" {
		opts.SpoolDir = filepath.Join(opts.SpoolDir, WideSpool)
	}
	opts.DeadLetterPath = ""
	if c.QuestDB.DeadLetter != "" {
		opts.DeadLetterPath = c.QuestDB.DeadLetter + ingest.WideSuffix
	}
	return opts
}

// WideSpool is the spool directory of the wide layout's archive under
// questdb.spool_dir.
const WideSpool = "wide"

// SideArchiveOptions are the options of an archive beside the samples' (device
// events, alarm transitions, the audit trail): the samples' spool settings,
// with a spool directory of its own, spool_dir/<spoolSub>.
func (q QuestDB) SideArchiveOptions(table, spoolSub string) ingest.Options {
	opts := ingest.Options{Table: table, SpoolNoFsync: q.SpoolFsync != nil && !*q.SpoolFsync, SpoolMaxBytes: q.SpoolMaxBytes}
	if q.SpoolDir != "" {
		opts.SpoolDir = filepath.Join(q.SpoolDir, spoolSub)
	}
	return opts
}

// SideTable is the table of an archive beside the samples' whose default name
// is name (alarm_events, audit_events): name itself next to the default samples
// table, <table>_<name> next to any other, so that a test with a table of its
// own keeps its alarm transitions and audit records apart too.
func (q QuestDB) SideTable(name string) string {
	if q.Table == "" || q.Table == ingest.DefaultTable {
		return name
	}
	return q.Table + "_" + name
}

// SpoolDirs are the spool directories the configuration uses (the samples'
// and each side archive's), empty without a spool.
func (q QuestDB) SpoolDirs(sideSubs ...string) []string {
	if q.Address == "" || q.SpoolDir == "" {
		return nil
	}
	dirs := []string{q.SpoolDir}
	for _, sub := range sideSubs {
		dirs = append(dirs, filepath.Join(q.SpoolDir, sub))
	}
	return dirs
}

// ArchiveFilter collects the channels' archive deadbands and heartbeats; nil
// when no channel has one.
func (c *Config) ArchiveFilter() *ingest.Filter {
	specs := c.ArchiveFilterSpecs()
	if len(specs) == 0 {
		return nil
	}
	return ingest.NewFilter(specs)
}

// ArchiveFilterSpecs are the channels' archive deadbands and heartbeats by
// "device/channel"; channels without one are left out.
func (c *Config) ArchiveFilterSpecs() map[string]ingest.ChannelFilter {
	specs := map[string]ingest.ChannelFilter{}
	for i, d := range c.Devices {
		for _, ch := range c.ResolvedChannels(i) {
			if ch.ArchiveDeadband > 0 || ch.ArchiveHeartbeat > 0 {
				specs[d.Name+"/"+ch.Name] = ingest.ChannelFilter{
					Deadband: ch.ArchiveDeadband, Relative: ch.ArchiveRelative, Heartbeat: time.Duration(ch.ArchiveHeartbeat),
				}
			}
		}
	}
	return specs
}
