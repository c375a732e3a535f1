package supervisor

import (
	"github.com/switchyard/switchyard/backoff"
)

// Default backoff values (those of package backoff, and 30s of stable uptime to
// forget past failures).
const (
	DefaultBackoffMin        = backoff.DefaultMin
	DefaultBackoffMax        = backoff.DefaultMax
	DefaultBackoffJitter     = backoff.DefaultJitter
	DefaultBackoffResetAfter = backoff.DefaultResetAfter
)

// Backoff is the delay before a child is restarted: exponential from Min,
// capped at Max, with up to Jitter of it removed at random so that many
// children failing together do not retry together (a backoff.Policy). A
// child that ran for ResetAfter (default 30s here) before failing starts
// again from Min. Backoff is separate from restart intensity: intensity
// decides whether to restart at all, backoff decides when. While a child waits
// it is in state BackingOff and its Node.NextRestart says when it will be
// started. Min < 0 restarts at once (OTP's behaviour).
type Backoff = backoff.Policy

// restartBackoff is b with its defaults, ResetAfter included.
func restartBackoff(b Backoff) Backoff {
	b = b.WithDefaults()
	if b.ResetAfter <= 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	return b
}
