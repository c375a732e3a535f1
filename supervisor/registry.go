package supervisor

import (
	"fmt"
	"slices"
	"sync"
)

// Registry maps names to process mailboxes. A name stays valid across
// restarts of its process, because the mailbox outlives each incarnation:
// callers look a name up once and keep calling; while the process is down
// their calls fail fast with ErrRestarted or ErrStopped instead of queueing.
// One Registry may be shared by a whole tree (Options.Registry).
type Registry struct {
	mu sync.RWMutex
	m  map[string]*Mailbox
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: make(map[string]*Mailbox)} }

// Lookup returns the mailbox registered under name.
func (r *Registry) Lookup(name string) (*Mailbox, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	mb, ok := r.m[name]
	return mb, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	names := make([]string, 0, len(r.m))
	for n := range r.m {
		names = append(names, n)
	}
	r.mu.RUnlock()
	slices.Sort(names)
	return names
}

func (r *Registry) register(name string, mb *Mailbox) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[string]*Mailbox)
	}
	if old, ok := r.m[name]; ok && old != mb {
		return fmt.Errorf("registry name %q: %w", name, ErrDuplicate)
	}
	r.m[name] = mb
	return nil
}

func (r *Registry) unregister(name string, mb *Mailbox) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[name] == mb {
		delete(r.m, name)
	}
}
