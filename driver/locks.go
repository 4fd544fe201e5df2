package driver

import "sync"

// keyedMutex serialises work on one key (a network or endpoint ID), so that
// independent endpoints never wait for each other.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.RWMutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	e := k.entry(key)
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.release(key, e)
	}
}

// rlock locks key for reading (others may too, lock waits for them) and
// returns its unlock.
func (k *keyedMutex) rlock(key string) func() {
	e := k.entry(key)
	e.mu.RLock()
	return func() {
		e.mu.RUnlock()
		k.release(key, e)
	}
}

// entry returns key's entry, counting one more user.
func (k *keyedMutex) entry(key string) *keyedEntry {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	return e
}

// release counts one user of key's entry less, dropping it with the last.
func (k *keyedMutex) release(key string, e *keyedEntry) {
	k.mu.Lock()
	if e.refs--; e.refs == 0 {
		delete(k.m, key)
	}
	k.mu.Unlock()
}
