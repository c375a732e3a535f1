package devicemgr_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

var accountingCases = flag.Int("accounting.cases", 10, "random scenarios of TestNoReadingIsAttributedToTheWrongQuery")

// tagged says which query a reading of the Tagged simulator answers: each
// query's answers lie in a range of their own.
var tagged = map[string]func(float64) bool{
	"MEAS:VOLT?": func(v float64) bool { return v > 10 && v < 11 },
	"MEAS:CURR?": func(v float64) bool { return v > 20 && v < 21 },
	// The set-point: 12 V until init or a command sets 30..40 V.
	"SOUR:VOLT?": func(v float64) bool { return v == sim.DefaultSetPoint || v >= 30 && v < 40 },
}

// TestNoReadingIsAttributedToTheWrongQuery is the property test of reply
// accounting: against a simulated instrument whose readings name the query
// they answer (sim's Tagged personality), with a random personality (write
// acknowledgements, refused joined messages, echo, CRLF, unsolicited lines)
// and a random model — mostly the right one, sometimes a wrong one (writes
// acknowledged but no write_ack, an echo not declared, joining an instrument
// that refuses it, unsolicited lines not declared) — random interleavings of
// polls, commands, read-backs, init lines, aborts, timeouts, callers that
// give up and reconnects must never publish a GOOD sample (nor return a
// command reply) that carries another query's answer. Whatever the model, a
// reply that does not fit is BAD, never a wrong GOOD. -accounting.cases sets
// how many scenarios run (each about a second).
func TestNoReadingIsAttributedToTheWrongQuery(t *testing.T) {
	for c := range *accountingCases {
		seed := uint64(c + 1)
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { accountingScenario(t, seed) })
	}
}

func accountingScenario(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xacc0))
	coin := func(p float64) bool { return rng.Float64() < p }
	pers := sim.Personality{Tagged: true, Ack: coin(0.5), Echo: coin(0.3), CRLF: coin(0.3)}
	pers.NoJoin = pers.Ack && coin(0.7)
	if coin(0.3) {
		pers.Unsolicited = time.Duration(20+rng.IntN(60)) * time.Millisecond
	}
	psu := simtest.SCPI(t, "psu", sim.Options{Seed: seed, Personality: pers})

	// The right model for this instrument, then perhaps one thing wrong.
	spec := devicemgr.Spec{
		Name: "psu", Address: psu.Addr(), Driver: devicemgr.DriverSCPI,
		ReplyTimeout: 200 * time.Millisecond,
		BackoffMin:   10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Echo: pers.Echo, Init: []string{"*CLS", "SOUR:VOLT 31"},
	}
	if pers.Ack {
		spec.WriteAck, spec.ErrorReply = "OK", "ERR {message}"
	}
	if !pers.NoJoin && coin(0.6) {
		spec.MaxJoin = 1 + rng.IntN(3)
	}
	if pers.Unsolicited > 0 {
		spec.Unsolicited = `re:EVENT \d+ .*`
	}
	if coin(0.5) {
		spec.ErrorQuery = "SYST:ERR?"
	}
	wrong := "none"
	if coin(0.35) {
		switch rng.IntN(4) {
		case 0:
			spec.WriteAck, spec.ErrorReply, wrong = "", "", "acknowledgements not declared"
			if coin(0.5) {
				spec.WriteConfirm = "-"
			}
		case 1:
			spec.Echo, wrong = !spec.Echo, "echo the wrong way round"
		case 2:
			spec.MaxJoin, wrong = 3, "joining allowed"
		case 3:
			spec.Unsolicited, wrong = "", "unsolicited lines not declared"
		}
	}
	period := func() time.Duration { return time.Duration(15+rng.IntN(40)) * time.Millisecond }
	format := func() string {
		if coin(0.5) {
			return "%f"
		}
		return ""
	}
	spec.Channels = []devicemgr.ChannelSpec{
		{Name: "voltage", Query: "MEAS:VOLT?", Reply: format(), Period: period()},
		{Name: "current", Query: "MEAS:CURR?", Reply: format(), Period: period()},
		{Name: "setpoint", Query: "SOUR:VOLT?", Reply: format(), Period: period()},
	}
	lo, hi := 30.0, 39.99
	spec.Commands = []devicemgr.CommandSpec{
		{Name: "set_voltage", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v", Min: lo, HasMin: true, Max: hi, HasMax: true}},
			Readback: "setpoint", Tolerance: 1e-6, Settle: 500 * time.Millisecond},
		{Name: "set_never", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v", Min: lo, HasMin: true, Max: hi, HasMax: true}},
			Readback: "current", Tolerance: 1e-9, Settle: 300 * time.Millisecond},
		{Name: "identify", Template: "*IDN?", ReplyFormat: `re:(?P<maker>[^,]+),(?P<model>[^,]+),.*`},
	}
	t.Logf("instrument %s; model write_ack=%q echo=%v max_join=%d unsolicited=%q error_query=%q; wrong: %s",
		pers, spec.WriteAck, spec.Echo, spec.MaxJoin, spec.Unsolicited, spec.ErrorQuery, wrong)

	r := start(t, spec)
	ctx := context.Background()
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex
	var replyErrs []string
	checkReply := func(query string, rep devicemgr.Reply, err error) {
		if err != nil {
			return
		}
		v, perr := strconv.ParseFloat(strings.TrimSpace(rep.Text), 64)
		if perr != nil || !tagged[query](v) {
			mu.Lock()
			replyErrs = append(replyErrs, fmt.Sprintf("%s answered %q", query, rep.Text))
			mu.Unlock()
		}
	}
	end := time.Now().Add(1200 * time.Millisecond)
	for ops := 0; time.Now().Before(end) && ops < 60; ops++ {
		switch op := rng.IntN(10); op {
		case 0, 1:
			v := lo + rng.Float64()*(hi-lo)
			_, _ = r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_voltage", Args: []string{strconv.FormatFloat(v, 'f', 2, 64)}})
		case 2:
			q := []string{"MEAS:VOLT?", "MEAS:CURR?", "SOUR:VOLT?"}[rng.IntN(3)]
			rep, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Raw: q})
			checkReply(q, rep, err)
		case 3:
			rep, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "identify"})
			if err == nil && !strings.HasPrefix(rep.Text, "Switchyard,SIM-PSU,") {
				mu.Lock()
				replyErrs = append(replyErrs, fmt.Sprintf("identify answered %q", rep.Text))
				mu.Unlock()
			}
		case 4: // an abort of whatever is in progress, often a settling write
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = r.mgr.Send(ctx, "psu", devicemgr.Command{Name: "set_never", Args: []string{"33"}})
			}()
			time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
			_, _ = r.mgr.Abort("psu", "property test")
		case 5: // replies slower than the reply timeout for a while: timeouts
			psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 250 * time.Millisecond })
			time.Sleep(time.Duration(50+rng.IntN(200)) * time.Millisecond)
			psu.UpdateFaults(func(f *sim.Faults) { f.Slow = 0 })
		case 6:
			psu.Drop()
		case 7: // a caller that gives up before the reply
			q := []string{"MEAS:VOLT?", "MEAS:CURR?"}[rng.IntN(2)]
			rep, err := r.mgr.Send(ctx, "psu", devicemgr.Command{Raw: q, Timeout: time.Duration(1+rng.IntN(5)) * time.Millisecond})
			checkReply(q, rep, err)
		default:
			time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
		}
	}
	wg.Wait()
	psu.SetFaults(sim.Faults{})
	time.Sleep(100 * time.Millisecond) // let the last polls land

	queryOf := map[string]string{}
	for _, ch := range spec.Channels {
		queryOf[ch.Name] = ch.Query
	}
	good := 0
	for _, s := range r.sub.Drain(nil, 0) {
		if s.Quality != telemetry.Good {
			continue
		}
		good++
		if !tagged[queryOf[s.Channel]](s.Value.F) {
			t.Errorf("GOOD %s = %v is not an answer to %s (wrong: %s)", s.Channel, s.Value.F, queryOf[s.Channel], wrong)
		}
	}
	for _, e := range replyErrs {
		t.Errorf("command reply: %s (wrong: %s)", e, wrong)
	}
	info, _ := r.mgr.Get("psu")
	t.Logf("%d GOOD samples, out of step %d times, %d reconnections", good, info.OutOfStep, info.Restarts)
	if wrong == "none" && good == 0 {
		t.Errorf("the right model for %s read nothing: %s", pers, info.LastError)
	}
}
