// Package audit holds the audit trail's record (one state-changing API call:
// who, from where, what, with which result, how long) and its archive (a table of
// its own, through ingest).
// The server writes records (server.Options.Audit); this package only keeps them.
package audit

import "time"

// Record is one state-changing call, allowed or refused.
type Record struct {
	// Time is when the call finished.
	Time time.Time `json:"-"`
	// Identity, Role and Method are the caller as the server identified it.
	Identity string `json:"identity"`
	Role     string `json:"role"`
	Method   string `json:"method"`
	// Peer is the client's address, Transport "grpc" or "connect".
	Peer      string `json:"peer"`
	Transport string `json:"transport"`
	// RPC is the full method name ("/switchyard.v1.DeviceService/SendCommand").
	RPC string `json:"rpc"`
	// Device is what it acted on (empty for a process restart); Target the
	// command, raw line, alarm channel or process path; Args the command's
	// arguments. The server cuts each to a bounded length.
	Device string   `json:"device,omitempty"`
	Target string   `json:"target,omitempty"`
	Args   []string `json:"args,omitempty"`
	// Code is "OK" or the status code's name; Reason and Error say why it failed.
	Code   string `json:"code"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
	// Duration is how long the call took.
	Duration time.Duration `json:"duration_ns"`
	// UserAgent and Client are what the client says it is (user-agent header,
	// x-switchyard-client metadata).
	UserAgent string `json:"user_agent,omitempty"`
	Client    string `json:"client,omitempty"`
}

// Sink receives every record. It may wait (an archive at its bound), never drop.
type Sink interface {
	Record(Record)
}
