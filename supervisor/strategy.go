package supervisor

// Strategy decides which children restart when one of them must restart.
type Strategy uint8

// Restart strategies, with OTP's meaning. The zero value is OneForOne.
const (
	// OneForOne restarts only the child that exited.
	OneForOne Strategy = iota
	// OneForAll stops all other children (in reverse order) and restarts
	// them all (in order).
	OneForAll
	// RestForOne stops the children started after the one that exited
	// (in reverse order) and restarts it and them (in order).
	RestForOne
)

var strategyNames = [...]string{"one_for_one", "one_for_all", "rest_for_one"}

// String returns OTP's name: "one_for_one", "one_for_all" or "rest_for_one".
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return "unknown"
}

// group returns, in start order, the children that restart together with c.
func (s *Supervisor) group(c *child) []*child {
	switch s.opts.Strategy {
	case OneForAll:
		return s.snapshotChildren()
	case RestForOne:
		all := s.snapshotChildren()
		for i, x := range all {
			if x == c {
				return all[i:]
			}
		}
	}
	return []*child{c}
}
