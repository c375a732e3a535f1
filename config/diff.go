package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
)

// Diff is how a new configuration differs from the running one, as a reload
// applies it: device by device, then the alarm rules, the archive filters and
// the settings that cannot change while the server runs.
type Diff struct {
	// Added, Removed and Restarted name devices, in the order of the
	// configuration they are in (Removed: the old one). A restarted device's
	// protocol settings changed: it reconnects with them.
	Added     []string `json:"added,omitempty"`
	Removed   []string `json:"removed,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
	// Updated are devices whose tags, units, alarm limits or archive filters
	// changed and nothing else: applied without reconnecting.
	Updated []DeviceUpdate `json:"updated,omitempty"`
	// Unchanged counts the devices left untouched.
	Unchanged int `json:"unchanged"`
	// Alarms and ArchiveFilter: the alarm rules, the channels' archive
	// filters changed (each is replaced as a whole, at once).
	Alarms        bool `json:"alarms,omitempty"`
	ArchiveFilter bool `json:"archive_filter,omitempty"`
	// NeedsRestart lists the settings that changed but cannot while the
	// server runs ("listen.grpc: 127.0.0.1:7400 -> 127.0.0.1:7401", a device's
	// archive layout): they keep their running value until the server
	// restarts.
	NeedsRestart []string `json:"needs_restart,omitempty"`
}

// DeviceUpdate is a device changed in place: what changed, among "tags",
// "units", "alarm limits", "archive filter" (and "model" when only the model's
// name did).
type DeviceUpdate struct {
	Name string   `json:"device"`
	What []string `json:"changed"`
}

// Empty reports whether nothing changes.
func (d *Diff) Empty() bool {
	return len(d.Added)+len(d.Removed)+len(d.Restarted)+len(d.Updated)+len(d.NeedsRestart) == 0 && !d.Alarms && !d.ArchiveFilter
}

// Summary says what changes in one line, such as "2 added, 1 removed,
// 1 restarted, 3 updated in place (alarm limits, tags), 90 unchanged; alarm
// rules replaced; needs a restart: listen.grpc".
func (d *Diff) Summary() string {
	var parts []string
	count := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	count(len(d.Added), "added")
	count(len(d.Removed), "removed")
	count(len(d.Restarted), "restarted")
	if len(d.Updated) > 0 {
		var what []string
		for _, u := range d.Updated {
			for _, w := range u.What {
				if !slices.Contains(what, w) {
					what = append(what, w)
				}
			}
		}
		slices.Sort(what)
		parts = append(parts, fmt.Sprintf("%d updated in place (%s)", len(d.Updated), strings.Join(what, ", ")))
	}
	parts = append(parts, fmt.Sprintf("%d unchanged", d.Unchanged))
	s := strings.Join(parts, ", ")
	if d.Alarms {
		s += "; alarm rules replaced"
	}
	if d.ArchiveFilter {
		s += "; archive filters replaced"
	}
	if len(d.NeedsRestart) > 0 {
		fields := make([]string, len(d.NeedsRestart))
		for i, n := range d.NeedsRestart {
			fields[i], _, _ = strings.Cut(n, ":")
		}
		s += "; needs a restart: " + strings.Join(fields, ", ")
	}
	return s
}

// Compare returns how next differs from c (both checked by Parse or Load).
func (c *Config) Compare(next *Config) Diff {
	var d Diff
	oldSpecs, newSpecs := c.Specs(), next.Specs()
	oldIdx := make(map[string]int, len(oldSpecs))
	for i, s := range oldSpecs {
		oldIdx[s.Name] = i
	}
	oldRules, newRules := c.AlarmRules(), next.AlarmRules()
	d.Alarms = !reflect.DeepEqual(oldRules, newRules)
	oldFilters, newFilters := c.ArchiveFilterSpecs(), next.ArchiveFilterSpecs()
	d.ArchiveFilter = !reflect.DeepEqual(oldFilters, newFilters)
	seen := make(map[string]bool, len(newSpecs))
	for j, ns := range newSpecs {
		seen[ns.Name] = true
		i, ok := oldIdx[ns.Name]
		if !ok {
			d.Added = append(d.Added, ns.Name)
			continue
		}
		os := oldSpecs[i]
		change := devicemgr.Compare(os, ns)
		if change == devicemgr.Restart {
			d.Restarted = append(d.Restarted, ns.Name)
			continue
		}
		var what []string
		if change == devicemgr.InPlace {
			if !equalTags(os.Tags, ns.Tags) {
				what = append(what, "tags")
			}
			for k := range ns.Channels {
				if ns.Channels[k].Unit != os.Channels[k].Unit {
					what = append(what, "units")
					break
				}
			}
			if len(what) == 0 {
				what = append(what, "model")
			}
		}
		for _, ch := range ns.Channels {
			if !sameAlarm(oldRules, newRules, ns.Name, ch.Name) {
				what = append(what, "alarm limits")
				break
			}
		}
		for _, ch := range next.ResolvedChannels(j) {
			key := ns.Name + "/" + ch.Name
			if oldFilters[key] != newFilters[key] {
				what = append(what, "archive filter")
				break
			}
		}
		if len(what) == 0 {
			d.Unchanged++
			continue
		}
		d.Updated = append(d.Updated, DeviceUpdate{Name: ns.Name, What: what})
	}
	for _, os := range oldSpecs {
		if !seen[os.Name] {
			d.Removed = append(d.Removed, os.Name)
		}
	}
	d.NeedsRestart = append(restartOnly(c, next), layoutChanges(c, next, newSpecs)...)
	return d
}

// layoutChanges lists the devices of next archived in another layout than in
// c (a device added in the wide layout too): the server settles which
// devices are wide when it starts, so until it restarts they keep the
// layout they had (an added one: narrow), each as
// "devices.<name>.archive_layout: old -> new".
func layoutChanges(c, next *Config, newSpecs []devicemgr.Spec) []string {
	oldWide, newWide := c.WideDevices(), next.WideDevices()
	name := func(wide bool) string {
		if wide {
			return LayoutWide
		}
		return LayoutNarrow
	}
	var out []string
	for _, ns := range newSpecs {
		if o, n := oldWide[ns.Name], newWide[ns.Name]; o != n {
			out = append(out, fmt.Sprintf("devices.%s.archive_layout: %s -> %s", ns.Name, name(o), name(n)))
		}
	}
	return out
}

func equalTags(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sameAlarm reports whether a channel gets the same alarm (group and limits,
// or none) from both rule lists: the first rule that selects it applies.
func sameAlarm(a, b []alarm.Rule, device, channel string) bool {
	first := func(rules []alarm.Rule) *alarm.Rule {
		for i := range rules {
			if rules[i].Matches(device, channel) {
				return &rules[i]
			}
		}
		return nil
	}
	x, y := first(a), first(b)
	if x == nil || y == nil {
		return x == y
	}
	return x.Group == y.Group && reflect.DeepEqual(x.Limits, y.Limits)
}

// restartOnlySettings are the sections a running server cannot change: its
// ports, its archive (the QuestDB address, tables and spool), and its
// security settings (the tokens file's and TLS files' contents are re-read
// when they change, but not their names).
type restartOnlySettings struct {
	Listen   Listen  `yaml:"listen"`
	QuestDB  QuestDB `yaml:"questdb"`
	Auth     Auth    `yaml:"auth"`
	TLS      TLS     `yaml:"tls"`
	HTTP     HTTP    `yaml:"http"`
	Limits   Limits  `yaml:"limits"`
	Insecure bool    `yaml:"insecure"`
}

func (c *Config) restartOnly() restartOnlySettings {
	return restartOnlySettings{c.Listen, c.QuestDB, c.Auth, c.TLS, c.HTTP, c.Limits, c.Insecure}
}

// KeepRestartOnly sets the settings that cannot change while the server runs
// (see Diff.NeedsRestart) back to running's: what a server that reloaded next
// actually runs with.
func (c *Config) KeepRestartOnly(running *Config) {
	r := running.restartOnly()
	c.Listen, c.QuestDB, c.Auth, c.TLS, c.HTTP, c.Limits, c.Insecure = r.Listen, r.QuestDB, r.Auth, r.TLS, r.HTTP, r.Limits, r.Insecure
}

// restartOnly lists the restart-only settings that differ between a and b,
// each as "path: old -> new".
func restartOnly(a, b *Config) []string {
	return diffValues("", reflect.ValueOf(a.restartOnly()), reflect.ValueOf(b.restartOnly()))
}

// diffValues compares two values of one type field by field (by their YAML
// names), down to the fields that are not structs.
func diffValues(path string, a, b reflect.Value) []string {
	if a.Kind() == reflect.Struct {
		var out []string
		for i := range a.NumField() {
			f := a.Type().Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if path != "" {
				name = path + "." + name
			}
			out = append(out, diffValues(name, a.Field(i), b.Field(i))...)
		}
		return out
	}
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %s -> %s", path, show(a), show(b))}
}

func show(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "(default)"
		}
		v = v.Elem()
	}
	if v.IsZero() {
		return "(none)"
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	return fmt.Sprint(v.Interface())
}
