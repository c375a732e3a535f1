package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchyard/switchyard/ingest"
)

// Archive layouts (questdb.layout, archive_layout).
const (
	LayoutNarrow = "narrow"
	LayoutWide   = "wide"
)

// ArchiveLayout returns the archive layout of device i: its own
// archive_layout, else its model's, else questdb.layout, else narrow.
func (c *Config) ArchiveLayout(i int) string {
	if l := c.resolvedProtocol(i).ArchiveLayout; l != "" {
		return l
	}
	if c.QuestDB.Layout != "" {
		return c.QuestDB.Layout
	}
	return LayoutNarrow
}

// WideDevices returns the names of the devices archived in the wide layout.
func (c *Config) WideDevices() map[string]bool {
	out := map[string]bool{}
	for i, d := range c.Devices {
		if c.ArchiveLayout(i) == LayoutWide {
			out[d.Name] = true
		}
	}
	return out
}

// CheckArchiveLayouts checks the layouts as Parse does, for a configuration
// built or changed in code (a layout set after loading): the error names the
// field of each problem.
func (c *Config) CheckArchiveLayouts() error {
	var errs []error
	c.checkLayouts(func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	})
	return errors.Join(errs...)
}

// wideColumnType is the wide table's column type of a channel type.
func wideColumnType(channelType string) string {
	switch channelType {
	case "int":
		return "LONG"
	case "string":
		return "VARCHAR"
	case "bool":
		return "BOOLEAN"
	}
	return "DOUBLE"
}

// checkLayouts checks questdb.layout and every archive_layout, and that the
// channels of the devices archived wide can be columns of one table: names
// QuestDB takes as columns, and one type for each name (compared without
// case, as QuestDB compares column names).
func (c *Config) checkLayouts(add func(path, format string, args ...any)) {
	valid := func(path, l string) bool {
		if l != "" && l != LayoutNarrow && l != LayoutWide {
			add(path, "want %s or %s, got %q", LayoutNarrow, LayoutWide, l)
			return false
		}
		return true
	}
	valid("questdb.layout", c.QuestDB.Layout)
	for name, m := range c.Models {
		valid("models."+name+".archive_layout", m.ArchiveLayout)
	}
	type use struct{ typ, kind, name, where string }
	columns := map[string]use{} // by lower-case name
	for i, d := range c.Devices {
		at := fmt.Sprintf("devices[%d]", i)
		if !valid(at+".archive_layout", d.ArchiveLayout) || c.ArchiveLayout(i) != LayoutWide {
			continue
		}
		_, o, err := c.resolve(i)
		if err != nil {
			continue // reported as an unknown model
		}
		for j, ch := range c.ResolvedChannels(i) {
			path := at + ".channels[" + fmt.Sprint(j) + "].name"
			if j < len(o.channels) {
				path = o.channels[j] + ".name"
			}
			if msg := ingest.CheckWideColumn(ch.Name); msg != "" {
				add(path, "device %s is archived in the wide layout: %s", d.Name, msg)
				continue
			}
			typ, kind := wideColumnType(ch.Type), ch.Type
			if kind == "" {
				kind = "float"
			}
			key := strings.ToLower(ch.Name)
			prev, seen := columns[key]
			switch {
			case !seen:
				columns[key] = use{typ, kind, ch.Name, d.Name}
			case prev.typ != typ:
				add(path, "the wide archive layout keeps channel %q in one column for every device, and it is of type %s here but %s on device %s: give them different names",
					ch.Name, kind, prev.kind, prev.where)
			case prev.name != ch.Name:
				add(path, "the wide archive layout compares column names without case: %q here and %q on device %s would share a column: spell them alike",
					ch.Name, prev.name, prev.where)
			}
		}
	}
}
