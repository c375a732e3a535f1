package telemetry

import (
	"sync"
	"sync/atomic"
)

// ChannelIndex is a concurrent map from channels (device, channel) to values
// of V, made for the publish path, where every sample looks its channel up: a
// lookup of a channel already in the index takes no lock and writes no shared
// memory. Entries are added as channels appear and removed only in bulk
// (DeleteFunc, when a device leaves the configuration), which copies the index;
// a channel's value is usually a pointer whose target changes. The zero value is ready to use; it must not
// be copied after first use.
//
// The index is a read-only map behind an atomic pointer plus a small map of
// recent additions under a mutex; the additions are merged into a new
// read-only map once they are a quarter of it (so each addition costs O(1)
// amortized), or once lookups have found a channel among them often enough.
type ChannelIndex[V any] struct {
	read atomic.Pointer[map[chanKey]V]

	mu    sync.Mutex
	added map[chanKey]V // not yet in read; guarded by mu
	hits  int           // lookups answered from added since the last merge; guarded by mu
}

// mergeAfterHits is how many lookups answered from the additions make them
// merge into the read-only map even while they are few.
const mergeAfterHits = 1024

// Get returns the value of device/channel.
func (x *ChannelIndex[V]) Get(device, channel string) (V, bool) {
	k := chanKey{device, channel}
	if m := x.read.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v, true
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	// A merge may have moved it from the additions since the read above.
	if m := x.read.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v, true
		}
	}
	v, ok := x.added[k]
	if ok {
		x.hit()
	}
	return v, ok
}

// GetOrAdd returns the value of device/channel, adding mk() first if it has
// none. mk runs under the index's lock: it must not use the index.
func (x *ChannelIndex[V]) GetOrAdd(device, channel string, mk func() V) V {
	k := chanKey{device, channel}
	if m := x.read.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if m := x.read.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	if v, ok := x.added[k]; ok {
		x.hit()
		return v
	}
	v := mk()
	if x.added == nil {
		x.added = make(map[chanKey]V)
	}
	x.added[k] = v
	if m := x.read.Load(); m == nil || len(x.added) > len(*m)/4 {
		x.merge()
	}
	return v
}

// Range calls f for every channel in the index, in no particular order, until
// f returns false. Channels added meanwhile may or may not be seen.
func (x *ChannelIndex[V]) Range(f func(device, channel string, v V) bool) {
	if m := x.read.Load(); m != nil {
		for k, v := range *m {
			if !f(k.device, k.channel, v) {
				return
			}
		}
	}
	x.mu.Lock()
	added := make([]struct {
		k chanKey
		v V
	}, 0, len(x.added))
	for k, v := range x.added {
		added = append(added, struct {
			k chanKey
			v V
		}{k, v})
	}
	x.mu.Unlock()
	for _, e := range added {
		if !f(e.k.device, e.k.channel, e.v) {
			return
		}
	}
}

// DeleteFunc removes every channel for which del returns true. It copies the
// whole index (O(channels)): it is for rare changes such as a device removed
// by a configuration reload. del runs under the index's lock: it must not use
// the index.
func (x *ChannelIndex[V]) DeleteFunc(del func(device, channel string, v V) bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, v := range x.added {
		if del(k.device, k.channel, v) {
			delete(x.added, k)
		}
	}
	old := x.read.Load()
	if old == nil {
		return
	}
	m := make(map[chanKey]V, len(*old))
	for k, v := range *old {
		if !del(k.device, k.channel, v) {
			m[k] = v
		}
	}
	if len(m) != len(*old) {
		x.read.Store(&m)
	}
}

// Len returns the number of channels in the index.
func (x *ChannelIndex[V]) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := len(x.added)
	if m := x.read.Load(); m != nil {
		n += len(*m)
	}
	return n
}

// hit counts a lookup answered from the additions. x.mu held.
func (x *ChannelIndex[V]) hit() {
	x.hits++
	if x.hits >= mergeAfterHits {
		x.merge()
	}
}

// merge publishes a read-only map holding every channel. x.mu held.
func (x *ChannelIndex[V]) merge() {
	old := x.read.Load()
	size := len(x.added)
	if old != nil {
		size += len(*old)
	}
	m := make(map[chanKey]V, size)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	for k, v := range x.added {
		m[k] = v
	}
	x.read.Store(&m)
	clear(x.added)
	x.hits = 0
}
