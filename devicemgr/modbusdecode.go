package devicemgr

import (
	"fmt"
	"math"
	"strconv"
)

// registerCount returns how many 16-bit registers a Modbus data type spans.
func registerCount(dataType string) uint16 {
	switch dataType {
	case "uint32", "int32", "float32":
		return 2
	}
	return 1
}

// decodeRegisters turns the registers read for a channel into its value as
// text, scaled: raw*scale + offset. Text keeps one parse path (parseValue) for
// every driver.
func decodeRegisters(regs []uint16, dataType, wordOrder string, scale, offset float64) (string, error) {
	want := int(registerCount(dataType))
	if len(regs) != want {
		return "", fmt.Errorf("%s needs %d registers, got %d", dataType, want, len(regs))
	}
	var raw float64
	switch dataType {
	case "int16":
		raw = float64(int16(regs[0]))
	case "uint16", "":
		raw = float64(regs[0])
	default:
		hi, lo := regs[0], regs[1]
		if wordOrder == "low" {
			hi, lo = lo, hi
		}
		u := uint32(hi)<<16 | uint32(lo)
		switch dataType {
		case "uint32":
			raw = float64(u)
		case "int32":
			raw = float64(int32(u))
		case "float32":
			raw = float64(math.Float32frombits(u))
			if math.IsNaN(raw) || math.IsInf(raw, 0) {
				return "", fmt.Errorf("register value is not a finite number (0x%08x)", u)
			}
		default:
			return "", fmt.Errorf("unknown data type %q", dataType)
		}
	}
	if scale == 0 {
		scale = 1
	}
	return strconv.FormatFloat(raw*scale+offset, 'g', -1, 64), nil
}

// encodeRegisters is decodeRegisters' inverse for writes: it refuses a value
// that does not fit the data type after unscaling.
func encodeRegisters(v float64, dataType, wordOrder string, scale, offset float64) ([]uint16, error) {
	if scale == 0 {
		scale = 1
	}
	raw := (v - offset) / scale
	var u uint32
	switch dataType {
	case "float32":
		u = math.Float32bits(float32(raw))
	default:
		r := math.Round(raw)
		bounds := map[string][2]float64{
			"": {0, math.MaxUint16}, "uint16": {0, math.MaxUint16}, "int16": {math.MinInt16, math.MaxInt16},
			"uint32": {0, math.MaxUint32}, "int32": {math.MinInt32, math.MaxInt32},
		}[dataType]
		lo, hi := bounds[0], bounds[1]
		if r < lo || r > hi || math.IsNaN(r) {
			return nil, fmt.Errorf("%g is out of range for %s (raw %g)", v, dataType, r)
		}
		if r < 0 {
			u = uint32(int32(r))
		} else {
			u = uint32(r)
		}
	}
	if registerCount(dataType) == 1 {
		return []uint16{uint16(u)}, nil
	}
	hi, lo := uint16(u>>16), uint16(u)
	if wordOrder == "low" {
		return []uint16{lo, hi}, nil
	}
	return []uint16{hi, lo}, nil
}
