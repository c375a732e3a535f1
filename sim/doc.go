// Package sim owns the simulated instruments: networked lab devices on loopback TCP
// that the `switchyard sim` and `switchyard demo` verbs run, that every test uses as
// its device fake, and that benchmarks run by the thousand.
//
// An Instrument is a power supply speaking SCPI (NewSCPI), a key=value line pusher
// (NewLines), a Modbus TCP temperature controller (NewModbus), a balance pushing
// CSV lines (NewBalance) or a thermometer pushing JSON lines (NewThermometer).
// A Fleet (NewFleet) starts many of each, names them psu-01, ..., env-01, ...,
// tc-01, ..., bal-01, ..., thermo-01, ..., and serves an HTTP control API
// (Fleet.Handler) to list them, set their faults, and add and remove
// instruments while it runs (Fleet.Add, Fleet.Remove), so that tests and the
// demo can show an instrument arriving in, or leaving, a running plant.
// The constructors listen at once, so Addr is known before Serve runs; Serve(ctx)
// serves until ctx ends. Tests start instruments with package simtest, which serves
// them until the test ends.
//
// # SCPI power supply
//
// One command line in, at most one reply line out. Lines end in "\n" or "\r\n";
// replies end in "\n". A line holds one or more message units separated by ';', run
// in order; the replies of its queries are joined by ';' on one line, so
// "MEAS:VOLT?;MEAS:CURR?" gets "12.0004;1.2001". Headers are case-insensitive, in
// short or long form (MEAS or MEASure), with an optional leading ':'. Each unit's
// header is absolute: the SCPI rule that a unit after ';' continues the previous
// unit's path is not implemented. The subset:
//
//	*IDN?                      Switchyard,SIM-PSU,<Serial(name)>,1.0
//	*RST                       set-point 12 V, output on
//	*CLS                       clear the error queue
//	*OPC?                      1
//	MEASure:VOLTage[:DC]?      measured voltage, e.g. 12.0034
//	MEASure:CURRent[:DC]?      measured current
//	[SOURce:]VOLTage <volts>   set-point, 0..60 V; no reply
//	[SOURce:]VOLTage?          set-point
//	OUTPut[:STATe] ON|OFF|1|0  output; no reply
//	OUTPut[:STATe]?            1 or 0
//	SYSTem:ERRor[:NEXT]?       pops the error queue: 0,"No error" or e.g. -113,"Undefined header"
//
// A unit that fails gets no reply, like a real instrument, and pushes an error onto
// the instrument's error queue (16 deep; on overflow the last entry becomes -350):
// -113 undefined header, -104 data type error, -108 parameter not allowed,
// -109 missing parameter, -222 data out of range. The units after it still run.
//
// Readings are computed when queried, from the time since the instrument started, so
// an instrument nobody talks to costs no CPU: with the output on, the voltage is the
// set-point plus a slow drift of at most 2 mV plus gaussian noise of 1 mV, and the
// current is the voltage over a load of about 10 Ω plus noise; with the output off
// both are noise around zero. Each instrument has its own math/rand/v2 source seeded
// from Options.Seed and its name. It starts with its output on at 12 V.
// SetSweep makes a supply turn its own set-point up and down in steps (a
// Sweep, computed the same way when asked); the demo sweeps one supply through
// its alarm limits.
//
// # Line pusher
//
// To each connected client, NewLines pushes one line per period of its own:
//
//	seq=1 temp=21.503 pressure=1013.27 flow=2.498
//
// space-separated key=value pairs: seq counts the lines sent on that connection from
// 1; temp in °C, pressure in mbar and flow in l/min drift slowly with noise. What the
// client sends is read, counted as lines (Counters.Received) and discarded.
//
// # Modbus TCP temperature controller
//
// Unit id is ignored. Holding register 0 is the set-point in 0.1 °C (0..2000);
// input registers 0-1 hold the measured temperature as a float32, high word
// first, and input register 2 the heater output in 0.1 %; coil 0 enables the
// heater. The temperature follows the set-point (or the ambient 20 °C with the
// heater off) with a 2 s time constant plus noise. Functions 1, 3, 4, 5, 6 and
// 16 are served; others get an illegal-function exception, other addresses an
// illegal-address exception, a set-point out of range an illegal-value one.
//
// # Balance and thermometer
//
// They push like the line pusher: the balance first "seq,mass_g,stable" then
// lines such as "1,100.0012,1"; the thermometer lines such as
// {"seq":1,"temp_c":21.532,"probe":"PT100"}.
//
// # Personalities
//
// A power supply can have a Personality (Options.Personality): how it talks,
// beside what it does, like real instruments that are not SCPI-tidy. Ack
// answers every line, "OK" for an executed write and "ERR <why>" for a refused
// line, and knows no *OPC?; NoJoin refuses lines of several units; CRLF ends
// replies in "\r\n"; Echo sends every line back first; Unsolicited sends
// "EVENT <n> ..." lines between replies; SlowStart answers nothing for a while
// after a connect; DropEvery cuts every n-th reply halfway and drops the
// connection; Tagged makes readings name their query (MEAS:VOLT? 10.xxxx,
// MEAS:CURR? 20.xxxx) for tests. Named personalities (PersonalityNames: acks,
// chatty, crlf, echo, flaky, slow-start) are what the fleet runs
// (FleetSpec.Personalities, FleetSpec.Quirky); each has a device model in
// examples/models (Instrument.ModelName).
//
// # Faults
//
// Faults are set with Instrument.SetFaults or UpdateFaults, or through the control
// API, at any time from any goroutine, and apply to the next reply or line of every
// connection:
//
//   - Refuse closes the listener: dials get "connection refused". Clearing it listens
//     again on the same port. Open connections stay open.
//   - Hang keeps accepting and reading but never replies or pushes (a hung SCPI
//     instrument does not run the commands it reads either).
//   - Garbage replies or pushes "#@!garbage\n" instead, a line that fails to parse
//     (for Modbus, bytes that are no Modbus frame).
//   - Slow delays every reply or pushed line; a slow pusher pushes less often.
//   - Drop (Instrument.Drop, a one-shot action, not a state) closes every open
//     connection now.
//
// # Concurrency contract
//
// Every method of Instrument and Fleet is safe to call from any goroutine. An
// instrument runs one goroutine to accept (which waits without a listener while
// refusing), one goroutine per SCPI connection, and two per line-pusher connection
// (one reads and discards, one pushes on a time.Ticker); nothing runs per instrument
// when nobody is connected. Serve and Close close the listener and every connection
// and return only when all of these goroutines have returned. An instrument's state
// (set-point, error queue, noise source) is shared by its connections under one
// mutex; no lock is held while sleeping or writing to a socket. Counters are atomic.
package sim
