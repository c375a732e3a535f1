package config

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/devicemgr"
)

// entry is one key of the file, or one item of a list: where it is and what
// it holds, for naming the field of a decoding error.
type entry struct {
	line  int
	key   string // the key, or "" for a list item
	value string // a scalar value, else ""
	path  string
}

func entriesOf(root *yaml.Node) []entry {
	var out []entry
	walkYAML(root, func(path string, line int, key string, v *yaml.Node) {
		e := entry{line: line, key: key, path: path}
		if v.Kind == yaml.ScalarNode {
			e.value = v.Value
		}
		out = append(out, e)
		if key != "" && v.Kind == yaml.ScalarNode && v.Line != line {
			out = append(out, entry{line: v.Line, value: v.Value, path: path})
		}
	})
	return out
}

var (
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
	unmarshalRE    = regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `(.*)`)? into (\\S+)$")
	durationRE     = regexp.MustCompile(`^want a duration such as "250ms", got "(.*)"$`)
)

// explain turns one of the YAML decoder's errors ("line 9: field perod not
// found in type config.Channel") into its line and a message in the
// configuration's own words, naming the field: `models.x.channels[0]: unknown
// key "perod" (did you mean period?)`.
func (s *source) explain(e string) (int, string) {
	m := lineRE.FindStringSubmatch(e)
	if m == nil {
		return 0, e
	}
	line := atoi(m[1])
	msg := strings.TrimPrefix(e, m[0])
	find := func(match func(entry) bool) string {
		for _, en := range s.entries {
			if en.line == line && match(en) {
				return en.path
			}
		}
		return ""
	}
	at := func(p string) string {
		if p == "" {
			return ""
		}
		return p + ": "
	}
	if u := unknownFieldRE.FindStringSubmatch(msg); u != nil {
		key, typ := u[1], u[2]
		p := find(func(en entry) bool { return en.key == key })
		if i := strings.LastIndexByte(p, '.'); i >= 0 {
			p = p[:i]
		} else {
			p = ""
		}
		text := fmt.Sprintf("unknown key %q", key)
		keys := knownKeys(typ)
		if near := nearest(key, keys); near != "" {
			text += fmt.Sprintf(" (did you mean %s?)", near)
		} else if len(keys) > 0 && len(keys) <= 10 {
			text += " (known keys: " + strings.Join(keys, ", ") + ")"
		}
		return line, at(p) + text
	}
	if u := unmarshalRE.FindStringSubmatch(msg); u != nil {
		tag, val, goType := u[1], u[2], u[3]
		p := find(func(en entry) bool { return val != "" && en.value == val })
		got := map[string]string{"!!seq": "a list", "!!map": "a mapping (key: value)", "!!null": "nothing"}[tag]
		if got == "" {
			got = fmt.Sprintf("%q", val)
			if tag != "!!str" {
				got = val
			}
		}
		return line, fmt.Sprintf("%swant %s, got %s", at(p), wantOf(goType), got)
	}
	if u := durationRE.FindStringSubmatch(msg); u != nil {
		p := find(func(en entry) bool { return en.value == u[1] })
		text := fmt.Sprintf("want a duration such as 250ms, 2s or 1m, got %q", u[1])
		if _, err := time.ParseDuration(u[1] + "s"); err == nil {
			text += " (a number needs a unit: " + u[1] + "s or " + u[1] + "ms)"
		}
		return line, at(p) + text
	}
	if strings.HasPrefix(msg, "want a duration") {
		return line, "want a duration such as 250ms, 2s or 1m"
	}
	return line, msg
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// wantOf describes a Go type the way the configuration's reader thinks of it.
func wantOf(goType string) string {
	switch goType {
	case "uint16":
		return "a whole number from 0 to 65535"
	case "int", "int64":
		return "a whole number"
	case "float64", "*float64":
		return "a number"
	case "bool", "*bool":
		return "true or false"
	case "string":
		return "text"
	case "[]string":
		return "a list of text, such as [a, b]"
	case "map[string]string":
		return "a mapping of names to text, such as {area: lab}"
	}
	if strings.HasPrefix(goType, "[]") {
		return "a list"
	}
	if strings.HasPrefix(goType, "map[") {
		return "a mapping of names"
	}
	return "a mapping (key: value)"
}

// configTypes are the types of the file, by the name the YAML decoder gives.
var configTypes = map[string]reflect.Type{
	"config.Config": reflect.TypeFor[Config](), "config.Device": reflect.TypeFor[Device](),
	"config.Protocol": reflect.TypeFor[Protocol](), "config.Channel": reflect.TypeFor[Channel](),
	"config.Command": reflect.TypeFor[Command](), "config.Arg": reflect.TypeFor[Arg](),
	"config.Alarm": reflect.TypeFor[Alarm](), "config.Listen": reflect.TypeFor[Listen](),
	"config.QuestDB": reflect.TypeFor[QuestDB](), "config.Backoff": reflect.TypeFor[Backoff](),
	"config.modelsFile": reflect.TypeFor[modelsFile](), "config.Auth": reflect.TypeFor[Auth](),
	"config.CertIdentity": reflect.TypeFor[CertIdentity](), "config.TLS": reflect.TypeFor[TLS](),
	"config.HTTP": reflect.TypeFor[HTTP](), "config.Limits": reflect.TypeFor[Limits](),
}

// knownKeys lists the YAML keys of a config type, sorted.
func knownKeys(typeName string) []string {
	t, ok := configTypes[typeName]
	if !ok {
		return nil
	}
	var keys []string
	var collect func(t reflect.Type)
	collect = func(t reflect.Type) {
		for f := range t.Fields() {
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			switch {
			case name == "-":
			case strings.Contains(opts, "inline"):
				collect(f.Type)
			case name != "":
				keys = append(keys, name)
			}
		}
	}
	collect(t)
	slices.Sort(keys)
	return keys
}

// nearest returns the known key closest to key (a typo of it), or "".
func nearest(key string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// durationKeys are the duration keys of models and devices whose zero would
// otherwise silently mean "the default".
var durationKeys = map[string]bool{
	"connect_timeout": true, "reply_timeout": true, "idle_timeout": true, "lock_timeout": true,
	"settle": true, "connect_delay": true, "probe_interval": true,
	"initial": true, "max": true, "archive_heartbeat": false,
}

// checkExplicitZeros refuses a duration of models and devices written as
// zero: it would not mean zero but the default.
func checkExplicitZeros(entries []entry, add func(path, format string, args ...any)) {
	for _, en := range entries {
		if en.key == "" || !durationKeys[en.key] || en.value == "" {
			continue
		}
		if !strings.HasPrefix(en.path, "models.") && !strings.HasPrefix(en.path, "devices[") {
			continue
		}
		if en.key == "max" && !strings.HasSuffix(en.path, "backoff.max") {
			continue // an argument's max is a number, not a duration
		}
		if d, err := time.ParseDuration(en.value); err == nil && d == 0 {
			add(en.path, "must be more than 0 (leave the key out for the default)")
		}
	}
}

// checkDevice checks what devicemgr cannot see (the file's own keys) and
// warns of what is legal but suspicious, for device i.
func (c *Config) checkDevice(i int, spec *devicemgr.Spec, o *origin, add, warn func(path, format string, args ...any)) {
	at := fmt.Sprintf("devices[%d]", i)
	p := c.resolvedProtocol(i)
	if p.Join != nil && !*p.Join && p.MaxJoin > 1 {
		add(o.path(at, "max_join"), "max_join %d with join: false: say join: true, or leave max_join out", p.MaxJoin)
	}
	if spec.Driver == devicemgr.DriverSCPI {
		if spec.WriteAck == "" && spec.WriteConfirm == "-" {
			warn(o.path(at, "write_confirm"), `writes are sent unconfirmed and no write_ack is declared: if this instrument answers writes (OK, ERR ...), set write_ack, or every such answer puts the device out of step`)
		}
		for j, ch := range spec.Channels {
			if ch.Type == "string" && ch.Reply == "" {
				warn(o.path(at, fmt.Sprintf("channels[%d].reply", j)), "a string channel without a reply format takes any line as its value, so a misplaced reply cannot be told from a reading: give it a reply format")
			}
		}
	}
	for j, cmd := range spec.Commands {
		if cmd.Readback != "" && cmd.Tolerance == 0 {
			warn(o.path(at, fmt.Sprintf("commands[%d].tolerance", j)), "read-back %s with tolerance 0 settles only if it reads back exactly the value sent", cmd.Readback)
		}
	}
}

// resolvedProtocol is device i's protocol with its model applied.
func (c *Config) resolvedProtocol(i int) Protocol {
	d := c.Devices[i]
	if m, ok := c.Models[d.Model]; ok && d.Model != "" {
		return overlay(m, d.Protocol, &origin{fromModel: map[string]bool{}})
	}
	return d.Protocol
}

// isGlob reports whether a selector is a pattern rather than a name.
func isGlob(s string) bool { return strings.ContainsAny(s, "*?[\\") }

// checkAlarmTargets refuses an alarm rule that names a device, or a channel,
// that does not exist, and warns of a pattern that selects nothing.
func (c *Config) checkAlarmTargets(add, warn func(path, format string, args ...any)) {
	names := make([]string, len(c.Devices))
	chans := make([][]Channel, len(c.Devices))
	for i, d := range c.Devices {
		names[i] = d.Name
		chans[i] = c.ResolvedChannels(i)
	}
	match := func(pattern, name string) bool { ok, _ := path.Match(pattern, name); return ok }
	for i, a := range c.Alarms {
		at := fmt.Sprintf("alarms[%d]", i)
		if a.Device == "" || a.Channel == "" {
			continue // reported by checkAlarms
		}
		if _, err := path.Match(a.Device, ""); err != nil {
			continue
		}
		var devs []int
		for j, n := range names {
			if match(a.Device, n) {
				devs = append(devs, j)
			}
		}
		if len(devs) == 0 {
			if isGlob(a.Device) {
				warn(at+".device", "%q selects no device", a.Device)
			} else {
				add(at+".device", "there is no device %q", a.Device)
			}
			continue
		}
		found, setpoint := false, a.Setpoint == ""
		for _, j := range devs {
			for _, ch := range chans[j] {
				found = found || match(a.Channel, ch.Name)
				setpoint = setpoint || ch.Name == a.Setpoint
			}
		}
		switch {
		case !found && isGlob(a.Channel):
			warn(at+".channel", "%q selects no channel of the devices %q selects", a.Channel, a.Device)
		case !found:
			add(at+".channel", "no device %q selects has a channel %q", a.Device, a.Channel)
		case !setpoint:
			add(at+".setpoint", "no device %q selects has a channel %q", a.Device, a.Setpoint)
		}
	}
}
