package authn

import (
	"sync"
	"sync/atomic"
	"time"
)

// tokenCache remembers valid verdicts by the SHA-256 of the token. Only
// valid results are stored: an invalid token is re-checked every time, so a
// key that arrives later or a clock that moves on is seen at once.
//
// Reads are a sync.Map load, which takes no lock and does not allocate for
// an array key, so many requests repeating one token do not contend. (A
// map under an RWMutex measured almost 3x slower per parallel hit on two
// cores, its reader count bouncing between them.)
//
// Eviction: when an insert takes the cache past its bound, one sweep drops
// every expired or superseded entry and, if that frees less than an eighth
// of the bound, further entries in map order (the keys are hashes, so this
// is effectively random) until an eighth is free. A sweep is O(n) but
// frees n/8 slots, so inserts cost O(1) amortised, and hits keep no
// recency bookkeeping. Concurrent inserts may overshoot the bound briefly.
type tokenCache struct {
	m       sync.Map // [32]byte -> *cacheEntry
	n       atomic.Int64
	max     int64 // 0 disables the cache
	evictMu sync.Mutex
}

type cacheEntry struct {
	res   Result
	until time.Time // exp + leeway: when a full verification would fail
	// key is the key that verified the token, nil for a token without a
	// kid; then ks, the snapshot that verified it, must still be current.
	key *verKey
	ks  *keySet
}

func newTokenCache(size int) *tokenCache {
	return &tokenCache{max: int64(max(size, 0))}
}

// get returns the cached verdict if it is still current: not past its
// expiry and its key still in the key set. A stale entry is dropped.
func (c *tokenCache) get(sum *[32]byte, now time.Time, cur *keySet) (Result, bool) {
	if c.max == 0 {
		return Result{}, false
	}
	x, ok := c.m.Load(*sum)
	if !ok {
		return Result{}, false
	}
	e := x.(*cacheEntry)
	if e.current(now, cur) {
		return e.res, true
	}
	c.delete(*sum, x)
	return Result{}, false
}

func (e *cacheEntry) current(now time.Time, cur *keySet) bool {
	if !now.Before(e.until) {
		return false
	}
	if e.key == nil {
		return e.ks == cur
	}
	return cur.byKID[e.key.kid] == e.key
}

func (c *tokenCache) delete(k, x any) {
	if c.m.CompareAndDelete(k, x) {
		c.n.Add(-1)
	}
}

func (c *tokenCache) put(sum *[32]byte, e cacheEntry, now time.Time, cur *keySet) {
	if c.max == 0 {
		return
	}
	if _, replaced := c.m.Swap(*sum, &e); replaced {
		return
	}
	if c.n.Add(1) > c.max {
		c.evict(now, cur)
	}
}

func (c *tokenCache) evict(now time.Time, cur *keySet) {
	c.evictMu.Lock()
	defer c.evictMu.Unlock()
	if c.n.Load() <= c.max {
		return // another insert already made room
	}
	target := max(c.max/8, 1)
	var freed int64
	drop := func(k, x any) {
		if c.m.CompareAndDelete(k, x) {
			c.n.Add(-1)
			freed++
		}
	}
	c.m.Range(func(k, x any) bool {
		if !x.(*cacheEntry).current(now, cur) {
			drop(k, x)
		}
		return true
	})
	if freed >= target {
		return
	}
	c.m.Range(func(k, x any) bool {
		drop(k, x)
		return freed < target
	})
}

// len reports the number of entries, for tests.
func (c *tokenCache) len() int { return int(c.n.Load()) }
