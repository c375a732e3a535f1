package telemetry

import "time"

// DeviceStatus is a device's connection state as the consumers of its telemetry
// see it (the alarm engine, the device-event archive), without the device
// manager's configuration. The device manager publishes one at every change.
type DeviceStatus struct {
	Device string
	// State is the device manager's state name: "CONNECTING", "CONNECTED",
	// "BACKOFF" or "STOPPED".
	State string
	// Up is true while the device is connected, or connecting for the first
	// time: its readings are to be trusted, nothing has failed yet.
	Up bool
	// Stopped is true when the server stopped the device on purpose (shutdown):
	// not a failure.
	Stopped bool
	// Removed is true on the last status of a device a configuration reload
	// removed: nothing more comes about it.
	Removed bool
	// Address and Identity of the instrument (Identity once connected).
	Address, Identity string
	// LastError is why the last connection failed; empty if none did.
	LastError string
	// Restarts counts reconnections after a failure.
	Restarts int
	// ChangedAt is when State last changed; NextAttempt, in BACKOFF, when the
	// next connection attempt is due.
	ChangedAt, NextAttempt time.Time
}
