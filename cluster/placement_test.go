package cluster

import (
	"fmt"
	"testing"
)

func fleet(n int, tags func(i int) map[string]string) []DeviceRef {
	out := make([]DeviceRef, n)
	for i := range out {
		out[i] = DeviceRef{Name: fmt.Sprintf("dev-%02d", i)}
		if tags != nil {
			out[i].Tags = tags(i)
		}
	}
	return out
}

func counts(plan map[string]string) map[string]int {
	c := map[string]int{}
	for _, n := range plan {
		c[n]++
	}
	return c
}

func TestPlanBalancesAndRespectsSelectors(t *testing.T) {
	// 24 devices: 8 in area a, 16 in area b. n1 may own only area a; n2 and n3 anything.
	devs := fleet(24, func(i int) map[string]string {
		if i < 8 {
			return map[string]string{"area": "a"}
		}
		return map[string]string{"area": "b"}
	})
	nodes := []NodeRef{{Name: "n1", Selectors: []Selector{{"area": "a"}}}, {Name: "n2"}, {Name: "n3"}}
	plan := Plan(devs, nodes, nil)
	for _, d := range devs {
		if plan[d.Name] == "n1" && d.Tags["area"] != "a" {
			t.Errorf("%s (area %s) placed on n1, which may own only area a", d.Name, d.Tags["area"])
		}
	}
	if c := counts(plan); c["n1"] != 8 || c["n2"] != 8 || c["n3"] != 8 {
		t.Errorf("counts %v, want 8 each", c)
	}
}

func TestPlanIsStickyAndMovesOnlyForBalance(t *testing.T) {
	devs := fleet(12, nil)
	nodes := []NodeRef{{Name: "n1"}, {Name: "n2"}, {Name: "n3"}}
	first := Plan(devs, nodes, nil)
	if c := counts(first); c["n1"] != 4 || c["n2"] != 4 || c["n3"] != 4 {
		t.Fatalf("counts %v, want 4 each", c)
	}
	// Same inputs with the plan as the owners: nothing moves.
	again := Plan(devs, nodes, first)
	for d := range first {
		if again[d] != first[d] {
			t.Errorf("%s moved from %s to %s with nothing changed", d, first[d], again[d])
		}
	}
	// n3 dies: its four devices go to n1 and n2 (2 each), nobody else moves.
	owners := map[string]string{}
	for d, n := range first {
		if n != "n3" {
			owners[d] = n
		}
	}
	after := Plan(devs, nodes[:2], owners)
	if c := counts(after); c["n1"] != 6 || c["n2"] != 6 {
		t.Errorf("after n3 died: counts %v, want 6 and 6", c)
	}
	for d, n := range owners {
		if after[d] != n {
			t.Errorf("%s moved from surviving %s to %s", d, n, after[d])
		}
	}
	// n3 comes back: exactly 4 devices move to it.
	back := Plan(devs, nodes, after)
	moved := 0
	for d := range back {
		if back[d] != after[d] {
			moved++
			if back[d] != "n3" {
				t.Errorf("%s moved to %s, not to the new node", d, back[d])
			}
		}
	}
	if moved != 4 {
		t.Errorf("%d devices moved when n3 returned, want 4", moved)
	}
}

func TestPlanUnownable(t *testing.T) {
	devs := []DeviceRef{{Name: "x", Tags: map[string]string{"area": "c"}}, {Name: "y"}}
	plan := Plan(devs, []NodeRef{{Name: "n1", Selectors: []Selector{{"area": "a*"}}}}, map[string]string{"x": "n1"})
	if plan["x"] != "" || plan["y"] != "" {
		t.Errorf("plan %v: want no owner for devices no node may own", plan)
	}
	if !MayOwn([]Selector{{"area": "a*"}, {"rack": "B?"}}, map[string]string{"rack": "B1"}) {
		t.Error("second selector should match rack B1")
	}
}
