// Package backoff is the one implementation of "wait longer after each failure"
// in Switchyard: the restart delay of a supervised child, a device's reconnect
// delay, the archive's retry delay and a Subscribe replay's wait for the archive.
//
// A Policy says how long: exponential from Min, capped at Max, with up to
// Jitter of each delay removed at random (so that many things failing together
// do not retry together), forgotten after ResetAfter of stable running. A
// Backoff walks a Policy for one goroutine: Next returns the next delay, Reset
// starts over after a success, Wait sleeps on an injectable Clock, so tests run
// it on a fake clock or in a synctest bubble.
//
// Whether to try again at all is a property of the error, not of the loop that
// sees it (as Prometheus' RecoverableError): Recoverable marks an error worth
// retrying (a refused connection, a 503), and Retry gives up at once on any
// error that is not marked. An error type can also say it itself by
// implementing Recoverable() bool.
//
// # Concurrency
//
// Policy is a value, safe to share. A Backoff is owned by one goroutine and is
// not safe for concurrent use.
package backoff
