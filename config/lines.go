package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// lineIndex maps field paths such as "devices[2].channels[0].period" to the line
// they are on in the file.
type lineIndex map[string]int

func newLineIndex(root *yaml.Node) lineIndex {
	idx := lineIndex{}
	walkYAML(root, func(path string, line int, _ string, _ *yaml.Node) { idx[path] = line })
	return idx
}

// walkYAML calls visit for every key of every mapping (key: its name) and
// every item of every list (key: ""), with its path such as
// "devices[2].channels[0].period", its line and its value node.
func walkYAML(root *yaml.Node, visit func(path string, line int, key string, v *yaml.Node)) {
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				visit(p, k.Line, k.Value, v)
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				visit(p, c.Line, "", c)
				walk(c, p)
			}
		}
	}
	walk(root, "")
}

// find returns the line of path, or of its nearest ancestor present in the file
// (a missing field is reported at the object that lacks it); 0 if none.
func (idx lineIndex) find(path string) int {
	for path != "" {
		if l, ok := idx[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}
