package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Errors of the key-value layer the lease protocol runs on.
var (
	errExists   = errors.New("key exists")
	errRevision = errors.New("revision mismatch")
	errNoKey    = errors.New("no such key")
)

// kvEntry is one key's state as a watch or a read sees it.
type kvEntry struct {
	Key     string
	Value   []byte
	Rev     uint64
	Deleted bool      // deleted, purged or expired
	Created time.Time // when the server stored this revision
}

// kvStore is the part of a key-value bucket the lease protocol uses. The
// JetStream bucket (jsStore) is the one that runs; the tests add an in-memory
// one with the same expiry rule to drive the protocol under a fake clock.
type kvStore interface {
	// Create writes key only if it does not exist (or was deleted); errExists if it does.
	Create(ctx context.Context, key string, val []byte) (uint64, error)
	// Update writes key only if its revision is rev; errRevision if not.
	Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error)
	// Delete removes key only if its revision is rev.
	Delete(ctx context.Context, key string, rev uint64) error
	// Get reads key; errNoKey if it does not exist.
	Get(ctx context.Context, key string) (kvEntry, error)
	// Watch delivers every key's current entry, then an entry with an empty
	// Key (the initial state is complete), then every change, until ctx ends.
	Watch(ctx context.Context) (<-chan kvEntry, error)
}

// jsStore is a kvStore on a JetStream key-value bucket.
type jsStore struct{ kv jetstream.KeyValue }

func (s jsStore) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	rev, err := s.kv.Create(ctx, key, val)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: %w", key, errExists)
	}
	return rev, err
}

func (s jsStore) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	n, err := s.kv.Update(ctx, key, val, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: %w", key, errRevision)
	}
	return n, err
}

func (s jsStore) Delete(ctx context.Context, key string, rev uint64) error {
	return s.kv.Delete(ctx, key, jetstream.LastRevision(rev))
}

func (s jsStore) Get(ctx context.Context, key string) (kvEntry, error) {
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return kvEntry{}, fmt.Errorf("%s: %w", key, errNoKey)
	}
	if err != nil {
		return kvEntry{}, err
	}
	return entryOf(e), nil
}

func entryOf(e jetstream.KeyValueEntry) kvEntry {
	return kvEntry{Key: e.Key(), Value: e.Value(), Rev: e.Revision(), Created: e.Created(),
		Deleted: e.Operation() != jetstream.KeyValuePut}
}

func (s jsStore) Watch(ctx context.Context) (<-chan kvEntry, error) {
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan kvEntry, 64)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				var ke kvEntry
				if e != nil {
					ke = entryOf(e)
				}
				select {
				case out <- ke:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
