// Package examples holds Switchyard's example configurations (the *.yaml
// files beside this one, run by `switchyard demo --config`) and embeds the
// model library under models/: the device models of the simulator's
// instruments, the one source that `switchyard demo` and `switchyard sim`
// describe their fleet with (see sim.Instrument.ModelName).
package examples

import "embed"

// Models holds models/*.yaml: files with a `models:` section, for
// config.ModelsFS.
//
//go:embed models/*.yaml
var Models embed.FS

// ModelFiles are the files of Models, in the order to load them.
var ModelFiles = []string{"models/sim-psu.yaml", "models/sim-tc.yaml", "models/sim-lines.yaml"}
