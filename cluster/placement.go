package cluster

import (
	"hash/fnv"
	"sort"
)

// NodeRef is what placement knows of a live node: its name and what it may own.
type NodeRef struct {
	Name      string
	Selectors []Selector
}

// Plan decides which node should own each device. Every node computes it from
// the same inputs (the catalog, the live nodes and the current owners, all read
// from the cluster), so they agree without talking; where their views differ
// for a moment the leases, not the plan, keep ownership safe.
//
// The rules, in order:
//  1. a device goes only to a node that may own it (MayOwn); none: "" (unowned);
//  2. a device stays with its current owner while that owner may own it
//     (no move without a reason);
//  3. a device without an owner goes to the eligible node with the fewest
//     devices, ties broken by rendezvous hashing of (device, node), placing the
//     most constrained devices first;
//  4. then devices move, one at a time, from a node that has at least two more
//     than another node that may own them, until no such move is left: counts
//     are balanced within one among the nodes each device may use.
func Plan(devices []DeviceRef, nodes []NodeRef, owners map[string]string) map[string]string {
	byName := make(map[string]int, len(nodes))
	for i, n := range nodes {
		byName[n.Name] = i
	}
	eligible := make(map[string][]int, len(devices))
	for _, d := range devices {
		for i, n := range nodes {
			if MayOwn(n.Selectors, d.Tags) {
				eligible[d.Name] = append(eligible[d.Name], i)
			}
		}
	}
	count := make([]int, len(nodes))
	target := make(map[string]int, len(devices))
	var free []DeviceRef
	for _, d := range devices {
		if o, ok := byName[owners[d.Name]]; ok && contains(eligible[d.Name], o) {
			target[d.Name] = o
			count[o]++
			continue
		}
		if len(eligible[d.Name]) > 0 {
			free = append(free, d)
		}
	}
	sort.SliceStable(free, func(i, j int) bool {
		a, b := len(eligible[free[i].Name]), len(eligible[free[j].Name])
		if a != b {
			return a < b
		}
		return free[i].Name < free[j].Name
	})
	least := func(dev string, except int) int {
		best := -1
		for _, i := range eligible[dev] {
			if i == except {
				continue
			}
			if best < 0 || count[i] < count[best] ||
				count[i] == count[best] && hrw(dev, nodes[i].Name) > hrw(dev, nodes[best].Name) {
				best = i
			}
		}
		return best
	}
	for _, d := range free {
		i := least(d.Name, -1)
		target[d.Name] = i
		count[i]++
	}
	sorted := make([]string, 0, len(target))
	for name := range target {
		sorted = append(sorted, name)
	}
	sort.Strings(sorted)
	for moved := true; moved; {
		moved = false
		for _, name := range sorted {
			from := target[name]
			to := least(name, from)
			if to >= 0 && count[from]-count[to] > 1 {
				target[name] = to
				count[from]--
				count[to]++
				moved = true
			}
		}
	}
	out := make(map[string]string, len(devices))
	for _, d := range devices {
		if i, ok := target[d.Name]; ok {
			out[d.Name] = nodes[i].Name
		} else {
			out[d.Name] = ""
		}
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// hrw is the rendezvous-hashing weight of a device on a node.
func hrw(device, node string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(device))
	h.Write([]byte{0})
	h.Write([]byte(node))
	return h.Sum64()
}
