package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// faultParamNames are the parameters POST /instruments/{name}/fault accepts.
var faultParamNames = []string{"clear", "refuse", "drop", "hang", "garbage", "slow"}

// instrumentView is the JSON form of an instrument in the control API.
type instrumentView struct {
	Name     string     `json:"name"`
	Kind     Kind       `json:"kind"`
	Model    string     `json:"model"`                 // the device model in examples/models
	Habits   string     `json:"personality,omitempty"` // how a power supply talks, e.g. "ack nojoin"
	Address  string     `json:"address"`
	Faults   faultsView `json:"faults"`
	SetPoint *float64   `json:"set_point,omitempty"` // V for power supplies, °C for temperature controllers
	Output   *bool      `json:"output,omitempty"`    // power supplies only
	Counters Counters   `json:"counters"`
	Dropped  *int       `json:"dropped,omitempty"` // connections a drop closed, in a fault reply
}

type faultsView struct {
	Refuse  bool   `json:"refuse"`
	Hang    bool   `json:"hang"`
	Garbage bool   `json:"garbage"`
	Slow    string `json:"slow"` // a Go duration, "0s" when not slow
}

func viewOf(i *Instrument) instrumentView {
	f := i.Faults()
	v := instrumentView{
		Name:     i.name,
		Kind:     i.kind,
		Model:    i.ModelName(),
		Address:  i.addr,
		Faults:   faultsView{Refuse: f.Refuse, Hang: f.Hang, Garbage: f.Garbage, Slow: f.Slow.String()},
		Counters: i.Counters(),
	}
	if i.psu != nil {
		sp, on := i.psu.state(i.elapsedDuration())
		v.SetPoint, v.Output = &sp, &on
		v.Habits = i.pers.String()
	}
	if i.tc != nil {
		sp := i.TemperatureSetPoint()
		v.SetPoint = &sp
	}
	return v
}

// Handler returns the HTTP control API of the fleet, used by the `switchyard sim`
// process:
//
//	GET  /instruments               JSON list of every instrument: name, kind, address,
//	                                faults, set-point and output (power supplies), counters
//	GET  /instruments/{name}        the same for one instrument
//	POST /instruments/{name}/fault  set or clear faults, from query parameters or a JSON
//	                                object body with the same keys:
//	                                  clear=1     clear every fault first
//	                                  refuse=1|0  hang=1|0  garbage=1|0
//	                                  slow=250ms  (slow=0 clears it)
//	                                  drop=1      close every open connection now
//	                                It replies with the instrument as JSON.
//	POST /instruments               add an instrument while the fleet runs, from a JSON
//	                                object body {"name": "psu-21", "kind": "scpi"} (kind:
//	                                scpi, lines, modbus, balance or thermometer; a power
//	                                supply may name a "personality"), on a free port. It
//	                                replies 201 with the instrument as JSON (its address).
//	DELETE /instruments/{name}      stop an instrument (its connections close, as when it
//	                                is switched off) and forget it; replies with its
//	                                last state as JSON.
//
// A request naming no instrument of the fleet gets 404; a bad parameter gets 400 with
// a text naming it, and then nothing is changed; adding a name in use gets 409.
func (f *Fleet) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /instruments", func(w http.ResponseWriter, r *http.Request) {
		list := f.Instruments()
		views := make([]instrumentView, 0, len(list))
		for _, i := range list {
			views = append(views, viewOf(i))
		}
		writeJSON(w, views)
	})
	mux.HandleFunc("POST /instruments", f.postInstrument)
	mux.HandleFunc("DELETE /instruments/{name}", func(w http.ResponseWriter, r *http.Request) {
		i, err := f.Remove(r.PathValue("name"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		writeJSON(w, viewOf(i))
	})
	mux.HandleFunc("GET /instruments/{name}", func(w http.ResponseWriter, r *http.Request) {
		if i := f.lookup(w, r); i != nil {
			writeJSON(w, viewOf(i))
		}
	})
	mux.HandleFunc("POST /instruments/{name}/fault", f.postFault)
	return mux
}

// postInstrument adds an instrument (POST /instruments).
func (f *Fleet) postInstrument(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name        string `json:"name"`
		Kind        Kind   `json:"kind"`
		Personality string `json:"personality"`
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		http.Error(w, fmt.Sprintf("body: want a JSON object such as {\"name\": \"psu-21\", \"kind\": \"scpi\"}: %v", err), http.StatusBadRequest)
		return
	}
	if req.Kind == "" {
		req.Kind = KindSCPI
	}
	if len(req.Name) > 64 || strings.ContainsAny(req.Name, "/ \t\r\n") {
		http.Error(w, fmt.Sprintf("name: at most 64 characters without '/' or spaces, got %q", req.Name), http.StatusBadRequest)
		return
	}
	i, err := f.Add(req.Kind, req.Name, req.Personality)
	switch {
	case errors.Is(err, ErrExists):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case errors.Is(err, ErrClosed):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(viewOf(i))
}

func (f *Fleet) lookup(w http.ResponseWriter, r *http.Request) *Instrument {
	name := r.PathValue("name")
	i := f.Instrument(name)
	if i == nil {
		http.Error(w, fmt.Sprintf("no instrument %q", name), http.StatusNotFound)
	}
	return i
}

func (f *Fleet) postFault(w http.ResponseWriter, r *http.Request) {
	i := f.lookup(w, r)
	if i == nil {
		return
	}
	params, err := faultParams(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ch, err := parseFaultChange(params)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if _, err := i.UpdateFaults(ch.apply); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	v := viewOf(i)
	if ch.drop {
		n := i.Drop()
		v.Dropped = &n
	}
	writeJSON(w, v)
}

// faultParams merges the query parameters and the JSON object body of a fault request
// into one map of parameter texts.
func faultParams(r *http.Request) (map[string]string, error) {
	params := make(map[string]string)
	for k, vs := range r.URL.Query() {
		if len(vs) > 1 {
			return nil, fmt.Errorf("parameter %q: given %d times, want once", k, len(vs))
		}
		params[k] = vs[0]
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return params, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("body: want a JSON object such as {\"slow\":\"250ms\"}: %w", err)
	}
	for k, raw := range obj {
		if _, dup := params[k]; dup {
			return nil, fmt.Errorf("parameter %q: given both in the query and in the body", k)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(bytes.TrimSpace(raw)) // true, false, 0, 1
		}
		params[k] = s
	}
	return params, nil
}

// faultChange is a validated fault request; nil fields leave a fault as it is.
type faultChange struct {
	clear                 bool
	refuse, hang, garbage *bool
	slow                  *time.Duration
	drop                  bool
}

func parseFaultChange(params map[string]string) (faultChange, error) {
	var ch faultChange
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys) // so that the first bad parameter reported does not vary
	for _, k := range keys {
		v := params[k]
		if k == "slow" {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < 0 {
				return ch, fmt.Errorf("parameter %q: want a duration >= 0 such as 250ms, got %q", k, v)
			}
			ch.slow = &d
			continue
		}
		if !slices.Contains(faultParamNames, k) {
			return ch, fmt.Errorf("unknown parameter %q: want one of %s", k, strings.Join(faultParamNames, ", "))
		}
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return ch, fmt.Errorf("parameter %q: want 1, 0, true or false, got %q", k, v)
		}
		switch k {
		case "clear":
			ch.clear = b
		case "drop":
			ch.drop = b
		case "refuse":
			ch.refuse = &b
		case "hang":
			ch.hang = &b
		case "garbage":
			ch.garbage = &b
		}
	}
	if len(keys) == 0 {
		return ch, fmt.Errorf("no parameter: want one or more of %s", strings.Join(faultParamNames, ", "))
	}
	return ch, nil
}

// apply changes f as the request says: clear first, then each fault named.
func (ch faultChange) apply(f *Faults) {
	if ch.clear {
		*f = Faults{}
	}
	if ch.refuse != nil {
		f.Refuse = *ch.refuse
	}
	if ch.hang != nil {
		f.Hang = *ch.hang
	}
	if ch.garbage != nil {
		f.Garbage = *ch.garbage
	}
	if ch.slow != nil {
		f.Slow = *ch.slow
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v) // the client going away is not our error to report
}
