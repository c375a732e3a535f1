package cluster

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// memBucket is an in-memory key-value bucket with the JetStream bucket's rules
// that the lease protocol relies on: compare-and-set writes, a revision per
// write, and expiry of a key TTL after its last write (the bucket's max age).
// Under testing/synctest its timers run on the bubble's fake clock.
type memBucket struct {
	ttl time.Duration

	mu       sync.Mutex
	rev      uint64
	keys     map[string]*memKey
	watchers []chan kvEntry
	log      []string // every write, for tests to read
}

type memKey struct {
	e     kvEntry
	timer *time.Timer
}

func newMemBucket(ttl time.Duration) *memBucket {
	return &memBucket{ttl: ttl, keys: map[string]*memKey{}}
}

func (b *memBucket) write(key string, val []byte, expect uint64, create bool) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[key]
	live := k != nil && !k.e.Deleted
	switch {
	case create && live:
		return 0, fmt.Errorf("%s: %w", key, errExists)
	case !create && (!live || k.e.Rev != expect):
		return 0, fmt.Errorf("%s: %w", key, errRevision)
	}
	b.rev++
	if k == nil {
		k = &memKey{}
		b.keys[key] = k
	}
	if k.timer != nil {
		k.timer.Stop()
	}
	k.e = kvEntry{Key: key, Value: append([]byte(nil), val...), Rev: b.rev, Created: time.Now()}
	rev := b.rev
	k.timer = time.AfterFunc(b.ttl, func() { b.expire(key, rev) })
	b.log = append(b.log, fmt.Sprintf("put %s rev %d %s", key, rev, val))
	b.notify(k.e)
	return rev, nil
}

func (b *memBucket) expire(key string, rev uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.keys[key]
	if k == nil || k.e.Rev != rev || k.e.Deleted {
		return
	}
	b.rev++
	k.e = kvEntry{Key: key, Rev: b.rev, Deleted: true, Created: time.Now()}
	b.log = append(b.log, fmt.Sprintf("expired %s", key))
	b.notify(k.e)
}

func (b *memBucket) notify(e kvEntry) {
	for _, w := range b.watchers {
		w <- e // buffered generously; tests keep up
	}
}

// client is one node's connection to a memBucket; cut makes every request
// hang until its context ends and holds back watch events (a partition).
type memClient struct {
	b *memBucket

	mu   sync.Mutex
	cut  bool
	heal chan struct{}
}

func (b *memBucket) client() *memClient { return &memClient{b: b, heal: make(chan struct{})} }

func (c *memClient) Cut() {
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
}

func (c *memClient) Restore() {
	c.mu.Lock()
	c.cut = false
	close(c.heal)
	c.heal = make(chan struct{})
	c.mu.Unlock()
}

// wait blocks while cut; it fails when ctx ends first.
func (c *memClient) wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		cut, heal := c.cut, c.heal
		c.mu.Unlock()
		if !cut {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-heal:
		}
	}
}

func (c *memClient) Create(ctx context.Context, key string, val []byte) (uint64, error) {
	if err := c.wait(ctx); err != nil {
		return 0, err
	}
	return c.b.write(key, val, 0, true)
}

func (c *memClient) Update(ctx context.Context, key string, val []byte, rev uint64) (uint64, error) {
	if err := c.wait(ctx); err != nil {
		return 0, err
	}
	return c.b.write(key, val, rev, false)
}

func (c *memClient) Delete(ctx context.Context, key string, rev uint64) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	k := c.b.keys[key]
	if k == nil || k.e.Deleted || k.e.Rev != rev {
		return fmt.Errorf("%s: %w", key, errRevision)
	}
	k.timer.Stop()
	c.b.rev++
	k.e = kvEntry{Key: key, Rev: c.b.rev, Deleted: true, Created: time.Now()}
	c.b.log = append(c.b.log, fmt.Sprintf("deleted %s", key))
	c.b.notify(k.e)
	return nil
}

func (c *memClient) Get(ctx context.Context, key string) (kvEntry, error) {
	if err := c.wait(ctx); err != nil {
		return kvEntry{}, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	k := c.b.keys[key]
	if k == nil || k.e.Deleted {
		return kvEntry{}, fmt.Errorf("%s: %w", key, errNoKey)
	}
	return k.e, nil
}

func (c *memClient) Watch(ctx context.Context) (<-chan kvEntry, error) {
	in := make(chan kvEntry, 4096)
	c.b.mu.Lock()
	for _, k := range c.b.keys {
		in <- k.e
	}
	in <- kvEntry{}
	c.b.watchers = append(c.b.watchers, in)
	c.b.mu.Unlock()
	out := make(chan kvEntry)
	go func() {
		defer close(out)
		defer func() {
			c.b.mu.Lock()
			for i, w := range c.b.watchers {
				if w == in {
					c.b.watchers = append(c.b.watchers[:i], c.b.watchers[i+1:]...)
					break
				}
			}
			c.b.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-in:
				if c.wait(ctx) != nil {
					return
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}
