package sim

import (
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzModbusRequest: the temperature controller answers any request PDU from a
// client with a response or an exception, never a panic.
func FuzzModbusRequest(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 1})
	f.Add([]byte{4, 0, 0, 0, 3})
	f.Add([]byte{16, 0, 0, 0, 1, 2, 1, 144})
	f.Add([]byte{5, 0, 0, 0xFF, 0})
	i := &Instrument{now: time.Now, tc: newTC(rand.New(rand.NewPCG(1, 2)), time.Now())}
	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) == 0 {
			return
		}
		resp := i.tcHandle(req)
		if len(resp) < 2 || resp[0]&0x7F != req[0]&0x7F {
			t.Fatalf("request % x: response % x", req, resp)
		}
	})
}
