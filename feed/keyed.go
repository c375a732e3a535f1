package feed

// keyer is what a keyed queue knows of its items' keys. Positions are
// absolute: the number of items removed from the queue's head before the item.
type keyer[T any] interface {
	// lookup returns the position of the queued item with v's key.
	lookup(v *T) (pos int64, ok bool)
	// store records that v is queued at pos.
	store(v *T, pos int64)
	// forget drops v's key if it still points at pos.
	forget(v *T, pos int64)
	reset()
	// squash reduces items, in place, to the latest of each key in the order
	// of those latest items.
	squash(items []T) []T
}

type keyed[T any, K comparable] struct {
	key func(*T) K
	idx map[K]int64
}

func (k *keyed[T, K]) lookup(v *T) (int64, bool) {
	pos, ok := k.idx[k.key(v)]
	return pos, ok
}

func (k *keyed[T, K]) store(v *T, pos int64) {
	if k.idx == nil {
		k.idx = make(map[K]int64)
	}
	k.idx[k.key(v)] = pos
}

func (k *keyed[T, K]) forget(v *T, pos int64) {
	key := k.key(v)
	if p, ok := k.idx[key]; ok && p == pos {
		delete(k.idx, key)
	}
}

func (k *keyed[T, K]) reset() { clear(k.idx) }

func (k *keyed[T, K]) squash(items []T) []T {
	last := make(map[K]int, len(items))
	for i := range items {
		last[k.key(&items[i])] = i
	}
	n := 0
	for i := range items {
		if last[k.key(&items[i])] == i {
			items[n] = items[i]
			n++
		}
	}
	clear(items[n:])
	return items[:n]
}
