package sim

import (
	"encoding/binary"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Register map of the simulated Modbus TCP temperature controller.
const (
	// TCSetPointReg is the holding register of the set-point in 0.1 °C (uint16).
	TCSetPointReg = 0
	// TCProcessReg is the first of two input registers holding the measured
	// temperature in °C as a float32, high word first.
	TCProcessReg = 0
	// TCHeaterReg is the input register of the heater output in 0.1 % (uint16).
	TCHeaterReg = 2
	// TCEnableCoil is the coil that enables the heater.
	TCEnableCoil = 0
	// TCDefaultSetPoint is the controller's set-point at start, in °C.
	TCDefaultSetPoint = 25.0
	// tcTau is the time constant with which the temperature follows the set-point.
	tcTau = 2 * time.Second
)

// Modbus exception codes.
const (
	mbIllegalFunction = 1
	mbIllegalAddress  = 2
	mbIllegalValue    = 3
)

// tc is the state of a simulated temperature controller: the temperature
// follows the set-point with a first-order lag while the heater is enabled,
// and falls back to the ambient 20 °C while it is off.
type tc struct {
	mu       sync.Mutex
	rng      *rand.Rand
	sp       float64   // set-point, °C
	from     float64   // temperature when the target last changed
	changed  time.Time // when the target last changed
	enabled  bool
	ambient  float64
	lastTemp float64
}

func newTC(rng *rand.Rand, now time.Time) *tc {
	return &tc{rng: rng, sp: TCDefaultSetPoint, from: TCDefaultSetPoint, changed: now, enabled: true, ambient: 20}
}

func (c *tc) target() float64 {
	if c.enabled {
		return c.sp
	}
	return c.ambient
}

// temp returns the temperature at now, without noise when noise is false.
func (c *tc) tempLocked(now time.Time, noise bool) float64 {
	dt := now.Sub(c.changed).Seconds()
	t := c.target() + (c.from-c.target())*math.Exp(-dt/tcTau.Seconds())
	if noise {
		t += 0.005 * c.rng.NormFloat64()
	}
	return t
}

// retarget starts a new approach from the current temperature.
func (c *tc) retargetLocked(now time.Time, apply func()) {
	c.from = c.tempLocked(now, false)
	c.changed = now
	apply()
}

// TemperatureSetPoint returns a temperature controller's set-point in °C (0 for
// other instruments).
func (i *Instrument) TemperatureSetPoint() float64 {
	if i.tc == nil {
		return 0
	}
	i.tc.mu.Lock()
	defer i.tc.mu.Unlock()
	return i.tc.sp
}

// serveModbus answers Modbus TCP requests (MBAP header, then the PDU) on one
// connection: read coils (1), read holding (3) and input (4) registers, write a
// single coil (5) or register (6) and write multiple registers (16). Other
// functions get an illegal-function exception, unknown addresses an
// illegal-address exception. Faults apply as for SCPI; Garbage answers with
// bytes that are no Modbus frame.
func (i *Instrument) serveModbus(c net.Conn) {
	hdr := make([]byte, 7)
	pdu := make([]byte, 260)
	for {
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(hdr[4:6]))
		if n < 2 || n > 254 || binary.BigEndian.Uint16(hdr[2:4]) != 0 {
			return // not Modbus TCP: drop the connection like a real device
		}
		if _, err := io.ReadFull(c, pdu[:n-1]); err != nil {
			return
		}
		f := i.Faults()
		if f.Hang {
			continue
		}
		resp := i.tcHandle(pdu[:n-1])
		if !i.sleep(f.Slow, nil) {
			return
		}
		var out []byte
		if f.Garbage {
			out = []byte(garbageLine)
		} else {
			out = make([]byte, 7, 7+len(resp))
			copy(out, hdr[:4])
			binary.BigEndian.PutUint16(out[4:6], uint16(len(resp)+1))
			out[6] = hdr[6]
			out = append(out, resp...)
			i.queries.Add(1)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// tcHandle runs one request PDU and returns the response PDU.
func (i *Instrument) tcHandle(req []byte) []byte {
	fc := req[0]
	exc := func(code byte) []byte { return []byte{fc | 0x80, code} }
	if len(req) < 5 {
		return exc(mbIllegalValue)
	}
	addr := binary.BigEndian.Uint16(req[1:3])
	val := binary.BigEndian.Uint16(req[3:5])
	c := i.tc
	now := i.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch fc {
	case 1: // read coils: only coil 0
		if addr != TCEnableCoil || val != 1 {
			return exc(mbIllegalAddress)
		}
		b := byte(0)
		if c.enabled {
			b = 1
		}
		return []byte{fc, 1, b}
	case 3, 4:
		var regs []uint16
		if fc == 3 {
			regs = []uint16{uint16(math.Round(c.sp * 10))}
		} else {
			t := c.tempLocked(now, true)
			c.lastTemp = t
			bits := math.Float32bits(float32(t))
			heat := 0.0
			if c.enabled {
				heat = math.Max(0, math.Min(100, 10*(c.sp-t)+5*(c.sp-c.ambient)))
			}
			regs = []uint16{uint16(bits >> 16), uint16(bits), uint16(math.Round(heat * 10))}
		}
		if val == 0 || int(addr)+int(val) > len(regs) {
			return exc(mbIllegalAddress)
		}
		out := []byte{fc, byte(2 * val)}
		for _, r := range regs[addr : addr+val] {
			out = binary.BigEndian.AppendUint16(out, r)
		}
		return out
	case 5:
		if addr != TCEnableCoil {
			return exc(mbIllegalAddress)
		}
		if val != 0xFF00 && val != 0 {
			return exc(mbIllegalValue)
		}
		c.retargetLocked(now, func() { c.enabled = val == 0xFF00 })
		return append([]byte(nil), req[:5]...)
	case 6, 16:
		if addr != TCSetPointReg {
			return exc(mbIllegalAddress)
		}
		if fc == 16 {
			if len(req) < 8 || val != 1 {
				return exc(mbIllegalValue)
			}
			v := binary.BigEndian.Uint16(req[6:8])
			if v > 2000 {
				return exc(mbIllegalValue)
			}
			c.retargetLocked(now, func() { c.sp = float64(v) / 10 })
			return append([]byte(nil), req[:5]...)
		}
		if val > 2000 { // 0..200 °C
			return exc(mbIllegalValue)
		}
		c.retargetLocked(now, func() { c.sp = float64(val) / 10 })
		return append([]byte(nil), req[:5]...)
	}
	return exc(mbIllegalFunction)
}
