package sim_test

import (
	"io"
	"log"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/simonvetter/modbus"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

func modbusClient(t *testing.T, addr string) *modbus.ModbusClient {
	t.Helper()
	c, err := modbus.NewClient(&modbus.ClientConfiguration{URL: "tcp://" + addr, Timeout: replyTimeout, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestModbusTemperatureController(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	tc := simtest.Modbus(t, "tc-01", sim.Options{Now: clock})
	c := modbusClient(t, tc.Addr())
	sp, err := c.ReadRegister(sim.TCSetPointReg, modbus.HOLDING_REGISTER)
	if err != nil || sp != 250 {
		t.Fatalf("set-point register %d, %v; want 250", sp, err)
	}
	temp, err := c.ReadFloat32(sim.TCProcessReg, modbus.INPUT_REGISTER)
	if err != nil || math.Abs(float64(temp)-sim.TCDefaultSetPoint) > 0.1 {
		t.Fatalf("temperature %v, %v", temp, err)
	}
	if err := c.WriteRegister(sim.TCSetPointReg, 400); err != nil {
		t.Fatal(err)
	}
	if tc.TemperatureSetPoint() != 40 {
		t.Fatalf("set-point %v, want 40", tc.TemperatureSetPoint())
	}
	// The temperature follows with a 2 s time constant: after 10 s it is there.
	temp, _ = c.ReadFloat32(sim.TCProcessReg, modbus.INPUT_REGISTER)
	if temp > 26 {
		t.Fatalf("temperature jumped to %v", temp)
	}
	now = now.Add(10 * time.Second)
	temp, _ = c.ReadFloat32(sim.TCProcessReg, modbus.INPUT_REGISTER)
	if math.Abs(float64(temp)-40) > 0.2 {
		t.Fatalf("temperature %v after 10 s, want about 40", temp)
	}
	if err := c.WriteCoil(sim.TCEnableCoil, false); err != nil {
		t.Fatal(err)
	}
	if on, err := c.ReadCoil(sim.TCEnableCoil); err != nil || on {
		t.Fatalf("coil %v, %v", on, err)
	}
	for name, err := range map[string]error{
		"unknown register": func() error { _, err := c.ReadRegister(7, modbus.HOLDING_REGISTER); return err }(),
		"set-point range":  c.WriteRegister(sim.TCSetPointReg, 5000),
		"unknown function": func() error { _, err := c.ReadDiscreteInput(0); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no exception", name)
		}
	}
	tc.UpdateFaults(func(f *sim.Faults) { f.Garbage = true })
	if _, err := c.ReadRegister(sim.TCSetPointReg, modbus.HOLDING_REGISTER); err == nil {
		t.Fatal("garbage reply accepted")
	}
}

func TestBalanceAndThermometerPush(t *testing.T) {
	bal := simtest.Balance(t, "bal-01", sim.Options{PushHz: 100})
	th := simtest.Thermometer(t, "thermo-01", sim.Options{PushHz: 100})
	b := dial(t, bal.Addr())
	if line, err := b.readLine(replyTimeout); err != nil || line != sim.BalanceHeader {
		t.Fatalf("first balance line %q, %v", line, err)
	}
	if line, err := b.readLine(replyTimeout); err != nil || !(strings.HasPrefix(line, "1,100.0") || strings.HasPrefix(line, "1,99.9")) || !strings.HasSuffix(line, ",1") {
		t.Fatalf("balance line %q, %v", line, err)
	}
	line, err := dial(t, th.Addr()).readLine(replyTimeout)
	if err != nil || !strings.HasPrefix(line, `{"seq":1,"temp_c":2`) || !strings.HasSuffix(line, `"probe":"PT100"}`) {
		t.Fatalf("thermometer line %q, %v", line, err)
	}
}

func TestFleetNamesEveryKind(t *testing.T) {
	f := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Lines: 1, Modbus: 1, Balances: 1, Thermometers: 1})
	var got []string
	for _, in := range f.Instruments() {
		got = append(got, in.Name()+":"+string(in.Kind()))
	}
	want := "psu-01:scpi env-01:lines tc-01:modbus bal-01:balance thermo-01:thermometer"
	if strings.Join(got, " ") != want {
		t.Fatalf("fleet %v, want %s", got, want)
	}
}
