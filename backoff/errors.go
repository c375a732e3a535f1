package backoff

import (
	"context"
	"errors"
	"time"
)

// RecoverableError marks an error as worth another attempt: the failure is
// expected to pass (a refused connection, a timeout, a server that is
// restarting). Errors not marked are permanent for Retry.
type RecoverableError struct{ Err error }

func (e *RecoverableError) Error() string { return e.Err.Error() }

// Unwrap returns the marked error, so errors.Is and errors.As see through the
// mark.
func (e *RecoverableError) Unwrap() error { return e.Err }

// Recoverable reports true; see IsRecoverable.
func (e *RecoverableError) Recoverable() bool { return true }

// Recoverable marks err as worth another attempt; nil stays nil.
func Recoverable(err error) error {
	if err == nil {
		return nil
	}
	return &RecoverableError{Err: err}
}

// IsRecoverable reports whether err, or any error it wraps, says it is worth
// another attempt: a *RecoverableError, or any type with a Recoverable() bool
// method that returns true. A context's cancellation is never recoverable.
func IsRecoverable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var r interface{ Recoverable() bool }
	return errors.As(err, &r) && r.Recoverable()
}

// Retry calls f until it succeeds, returns an error that is not recoverable
// (returned as is), or ctx ends (context.Cause(ctx)). Between attempts it waits
// on b, which it resets after a success. onRetry, if not nil, hears of each
// recoverable failure and the delay before the next attempt, before the wait.
func Retry(ctx context.Context, b *Backoff, f func() error, onRetry func(err error, delay time.Duration)) error {
	for {
		err := f()
		if err == nil {
			b.Reset()
			return nil
		}
		if !IsRecoverable(err) {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		d := b.Next()
		if onRetry != nil {
			onRetry(err, d)
		}
		if err := b.Sleep(ctx, d); err != nil {
			return err
		}
	}
}
