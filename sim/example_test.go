package sim_test

import (
	"bufio"
	"context"
	"fmt"
	"net"

	"github.com/switchyard/switchyard/sim"
)

// A power supply on a free loopback port, asked for its identity and then set to 5 V
// and switched off, with the set-point and output read back in one round trip.
func Example() {
	psu, err := sim.NewSCPI("psu-01", sim.Options{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- psu.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	conn, err := net.Dial("tcp", psu.Addr())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	for _, cmd := range []string{"*IDN?", "SOUR:VOLT 5;OUTP OFF", "SOUR:VOLT?;OUTP?"} {
		fmt.Fprintf(conn, "%s\n", cmd)
	}
	for range 2 { // the middle line has no query, so no reply
		line, _ := rd.ReadString('\n')
		fmt.Print(line)
	}
	// Output:
	// Switchyard,SIM-PSU,SY76C6C91D,1.0
	// 5.0000;0
}

// A fleet's faults are set at run time, here from Go; `switchyard sim` sets them
// through Fleet.Handler.
func ExampleInstrument_UpdateFaults() {
	fleet, err := sim.NewFleet(sim.FleetSpec{SCPI: 2, Lines: 1})
	if err != nil {
		panic(err)
	}
	defer fleet.Close()
	psu := fleet.Instrument("psu-02")
	psu.UpdateFaults(func(f *sim.Faults) { f.Garbage = true })
	psu.UpdateFaults(func(f *sim.Faults) { f.Refuse = true })
	for _, i := range fleet.Instruments() {
		fmt.Println(i.Name(), i.Kind(), i.Faults())
	}
	// Output:
	// psu-01 scpi none
	// psu-02 scpi refuse garbage
	// env-01 lines none
}
