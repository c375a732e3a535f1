package sim_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

type view struct {
	Name     string       `json:"name"`
	Kind     string       `json:"kind"`
	Address  string       `json:"address"`
	SetPoint *float64     `json:"set_point"`
	Output   *bool        `json:"output"`
	Counters sim.Counters `json:"counters"`
	Dropped  *int         `json:"dropped"`
	Faults   struct {
		Refuse, Hang, Garbage bool
		Slow                  string
	} `json:"faults"`
}

func startControl(t *testing.T) (*sim.Fleet, *httptest.Server) {
	t.Helper()
	f := simtest.Fleet(t, sim.FleetSpec{SCPI: 2, Lines: 1, PushHz: 50})
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	return f, srv
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func TestControlList(t *testing.T) {
	f, srv := startControl(t)
	dial(t, f.Instrument("psu-01").Addr()).query("*OPC?")

	code, body := do(t, "GET", srv.URL+"/instruments", "")
	if code != http.StatusOK {
		t.Fatalf("GET /instruments: %d %s", code, body)
	}
	var list []view
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("GET /instruments: %v in %s", err, body)
	}
	if len(list) != 3 || list[0].Name != "psu-01" || list[2].Name != "env-01" || list[2].Kind != "lines" {
		t.Fatalf("GET /instruments = %+v, want psu-01, psu-02, env-01", list)
	}
	p := list[0]
	if p.Address != f.Instrument("psu-01").Addr() || p.SetPoint == nil || *p.SetPoint != 12 ||
		p.Output == nil || !*p.Output || p.Counters.Accepted != 1 || p.Counters.Queries != 1 || p.Faults.Slow != "0s" {
		t.Errorf("psu-01 = %+v", p)
	}
	if list[2].SetPoint != nil {
		t.Errorf("env-01 has a set-point: %+v", list[2])
	}

	code, body = do(t, "GET", srv.URL+"/instruments/env-01", "")
	if code != http.StatusOK || !strings.Contains(body, `"env-01"`) {
		t.Errorf("GET /instruments/env-01: %d %s", code, body)
	}
}

func TestControlSetAndClearFaults(t *testing.T) {
	f, srv := startControl(t)
	psu := f.Instrument("psu-01")
	url := srv.URL + "/instruments/psu-01/fault"

	code, body := do(t, "POST", url+"?refuse=1&slow=250ms", "")
	if code != http.StatusOK {
		t.Fatalf("POST ?refuse=1&slow=250ms: %d %s", code, body)
	}
	if want := (sim.Faults{Refuse: true, Slow: 250 * time.Millisecond}); psu.Faults() != want {
		t.Errorf("Faults() = %v, want %v", psu.Faults(), want)
	}
	var v view
	json.Unmarshal([]byte(body), &v)
	if !v.Faults.Refuse || v.Faults.Slow != "250ms" {
		t.Errorf("reply faults = %+v", v.Faults)
	}
	if _, err := net.Dial("tcp", psu.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial after refuse=1: %v, want ECONNREFUSED", err)
	}

	// JSON body, changing one fault and keeping the others.
	if code, body := do(t, "POST", url, `{"refuse": false, "garbage": true}`); code != http.StatusOK {
		t.Fatalf("POST JSON body: %d %s", code, body)
	}
	if want := (sim.Faults{Garbage: true, Slow: 250 * time.Millisecond}); psu.Faults() != want {
		t.Errorf("Faults() = %v, want %v", psu.Faults(), want)
	}
	c := dial(t, psu.Addr())
	c.query("*OPC?")

	code, body = do(t, "POST", url+"?clear=1&drop=1", "")
	if code != http.StatusOK {
		t.Fatalf("POST ?clear=1&drop=1: %d %s", code, body)
	}
	if psu.Faults() != (sim.Faults{}) {
		t.Errorf("Faults() after clear = %v, want none", psu.Faults())
	}
	json.Unmarshal([]byte(body), &v)
	if v.Dropped == nil || *v.Dropped != 1 {
		t.Errorf("dropped = %v in %s, want 1", v.Dropped, body)
	}
	if _, err := c.readLine(replyTimeout); !errors.Is(err, io.EOF) {
		t.Errorf("client after drop=1: %v, want EOF", err)
	}
}

func TestControlErrors(t *testing.T) {
	f, srv := startControl(t)
	for _, tc := range []struct {
		method, path, body string
		code               int
		mention            string
	}{
		{"POST", "/instruments/psu-01/fault?slow=abc", "", 400, `"slow"`},
		{"POST", "/instruments/psu-01/fault?slow=-1s", "", 400, `"slow"`},
		{"POST", "/instruments/psu-01/fault?hang=maybe", "", 400, `"hang"`},
		{"POST", "/instruments/psu-01/fault?bogus=1", "", 400, `"bogus"`},
		{"POST", "/instruments/psu-01/fault?hang=1&hang=0", "", 400, `"hang"`},
		{"POST", "/instruments/psu-01/fault", `{"garbage": "sometimes"}`, 400, `"garbage"`},
		{"POST", "/instruments/psu-01/fault", `[1]`, 400, "JSON object"},
		{"POST", "/instruments/psu-01/fault", "", 400, "no parameter"},
		{"POST", "/instruments/psu-99/fault?hang=1", "", 404, `"psu-99"`},
		{"GET", "/instruments/psu-99", "", 404, `"psu-99"`},
		{"GET", "/instruments/psu-01/fault", "", 405, ""},
	} {
		code, body := do(t, tc.method, srv.URL+tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.mention) {
			t.Errorf("%s %s %s: %d %q, want %d mentioning %s", tc.method, tc.path, tc.body, code, body, tc.code, tc.mention)
		}
	}
	// A request with one bad parameter changes nothing.
	do(t, "POST", srv.URL+"/instruments/psu-01/fault?hang=1&slow=abc", "")
	if got := f.Instrument("psu-01").Faults(); got != (sim.Faults{}) {
		t.Errorf("Faults() after a rejected request = %v, want none", got)
	}
}

// TestControlAddsAndRemovesInstruments adds a power supply while the fleet
// runs (it answers *IDN? on its new address), refuses a second one of the same
// name and bad requests, then removes it: its connection closes and its port
// stops accepting.
func TestControlAddsAndRemovesInstruments(t *testing.T) {
	f, srv := startControl(t)
	code, body := do(t, "POST", srv.URL+"/instruments", `{"name": "psu-21", "kind": "scpi"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %s", code, body)
	}
	var v view
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Name != "psu-21" || v.Kind != "scpi" || v.Address == "" || f.Instrument("psu-21") == nil || len(f.Instruments()) != 4 {
		t.Fatalf("added %+v; fleet has %d", v, len(f.Instruments()))
	}
	conn, err := net.DialTimeout("tcp", v.Address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("*IDN?\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), sim.Serial("psu-21")) {
		t.Fatalf("*IDN? of the new instrument: %q, %v", buf[:n], err)
	}
	for _, tc := range []struct {
		body string
		code int
	}{
		{`{"name": "psu-21", "kind": "scpi"}`, http.StatusConflict},
		{`{"name": "x", "kind": "laser"}`, http.StatusBadRequest},
		{`{"name": "x", "kind": "lines", "personality": "acks"}`, http.StatusBadRequest},
		{`{"name": "x", "colour": "red"}`, http.StatusBadRequest},
		{`{"name": ""}`, http.StatusBadRequest},
	} {
		if code, body := do(t, "POST", srv.URL+"/instruments", tc.body); code != tc.code {
			t.Errorf("POST %s: %d %s, want %d", tc.body, code, body, tc.code)
		}
	}
	if code, body := do(t, "DELETE", srv.URL+"/instruments/psu-21", ""); code != http.StatusOK || !strings.Contains(body, `"accepted": 1`) {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if _, err := conn.Read(buf); err == nil {
		t.Fatal("the removed instrument's connection is still open")
	}
	if c, err := net.DialTimeout("tcp", v.Address, time.Second); err == nil {
		c.Close()
		t.Fatal("the removed instrument still accepts connections")
	}
	if code, _ := do(t, "DELETE", srv.URL+"/instruments/psu-21", ""); code != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", code)
	}
	if f.Instrument("psu-21") != nil || len(f.Instruments()) != 3 {
		t.Fatal("the removed instrument is still listed")
	}
}
