package sqlite

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/acp-bridge/bridge"
)

// Every checkout line looks its variant up (CatalogEntryByVariant), and
// reading the entry and decoding its JSON cost ~100 µs, most of a create's
// reads. The snapshot changes only when a sync commits, so decoded entries
// are kept per snapshot:
//
//   - The cache belongs to one snapshot generation. A catalog Commit of this
//     process starts a new generation (empty cache) once its transaction is
//     committed; a lookup that read the database under the old generation
//     does not store its entry in the new one. So a lookup that starts
//     after a Commit returned never sees an entry of the older snapshot.
//   - Another process committing a snapshot into the same file is not seen:
//     the bridge's serve command is the only writer of its snapshots (feed
//     build does not use the database), and running a second one on the
//     same file while serving is not supported. (Checking the version per
//     lookup would cost a query, most of what the cache saves.)
//   - It holds at most entryCacheSize variant ids, each with its own decoded
//     entry (a few kB for a typical product), evicted by the CLOCK policy
//     (an approximation of least recently used without a list to maintain:
//     a hit only sets a flag). Unknown variants are not cached.
//   - Callers get deep copies (cloneEntry): they may change anything in
//     what they get without affecting the cache or each other. The copy
//     costs a few allocations, far less than decoding. (The checkout engine
//     only reads entries.)
const entryCacheSize = 4096

// entryCache holds decoded catalog entries by variant id.
type entryCache = clockCache[bridge.CatalogEntry]

func newEntryCache(size int) *entryCache { return newClockCache[bridge.CatalogEntry](size) }

// clockCache is a bounded map from string keys to values that are never
// changed once stored, evicted by the CLOCK policy (an approximation of
// least recently used without a list to maintain: a hit only sets a flag
// under a read lock). Values belong to a generation; invalidate starts a
// new, empty one, and put ignores values read under an older one.
type clockCache[V any] struct {
	mu    sync.RWMutex
	gen   uint64
	index map[string]int // key → slot
	slots []clockSlot[V]
	hand  int // the next slot to consider for eviction
	size  int
}

type clockSlot[V any] struct {
	key  string
	val  V
	used atomic.Bool // set by hits, cleared by the passing hand
}

func newClockCache[V any](size int) *clockCache[V] {
	return &clockCache[V]{size: size, index: make(map[string]int, size)}
}

// get returns the value of key, or the generation to pass to put after
// reading it from the database.
func (c *clockCache[V]) get(key string) (v V, ok bool, gen uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[key]
	if !ok {
		return v, false, c.gen
	}
	s := &c.slots[i]
	s.used.Store(true)
	return s.val, true, c.gen
}

// put stores v for key, unless the cache moved to another generation since
// gen was read; it replaces what key had.
func (c *clockCache[V]) put(gen uint64, key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // invalidated since the read
	}
	if i, ok := c.index[key]; ok {
		c.slots[i].val = v
		return
	}
	if c.slots == nil {
		c.slots = make([]clockSlot[V], 0, c.size) // never grows: slots stay put
	}
	if len(c.slots) < c.size {
		c.slots = append(c.slots, clockSlot[V]{key: key, val: v})
		c.index[key] = len(c.slots) - 1
		return
	}
	for {
		s := &c.slots[c.hand]
		if s.used.Swap(false) {
			c.hand = (c.hand + 1) % len(c.slots)
			continue
		}
		delete(c.index, s.key)
		s.key, s.val = key, v
		c.index[key] = c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		return
	}
}

// invalidate starts a new, empty generation.
func (c *clockCache[V]) invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.index)
	c.slots = nil
	c.hand = 0
}

// cloneEntry returns a copy of e that shares no memory that can be changed
// with it (strings are immutable). TestCloneEntryShares checks by
// reflection that it keeps up with the types' fields.
func cloneEntry(e bridge.CatalogEntry) bridge.CatalogEntry {
	e.Issues = slices.Clone(e.Issues)
	p := &e.Product
	p.Media = slices.Clone(p.Media)
	if p.Variants == nil {
		return e
	}
	vs := slices.Clone(p.Variants)
	// The pointers of every variant from two allocations, not 2 × len.
	var prices, quantities int
	for i := range vs {
		if vs[i].ListPrice != nil {
			prices++
		}
		if vs[i].Quantity != nil {
			quantities++
		}
	}
	ps := make([]bridge.Money, 0, prices)
	qs := make([]int64, 0, quantities)
	for i := range vs {
		v := &vs[i]
		if v.ListPrice != nil {
			ps = append(ps, *v.ListPrice)
			v.ListPrice = &ps[len(ps)-1]
		}
		if v.Quantity != nil {
			qs = append(qs, *v.Quantity)
			v.Quantity = &qs[len(qs)-1]
		}
		v.Options = slices.Clone(v.Options)
		v.Media = slices.Clone(v.Media)
	}
	p.Variants = vs
	return e
}
