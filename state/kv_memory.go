package state

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// memDB is the memory backend: sorted buckets behind one lock. An update
// writes in place and journals what each write replaced; unless fn returns
// nil the journal is played back. The write lock, held for the whole
// update, keeps readers from seeing a transaction half done.
type memDB struct {
	mu      sync.RWMutex
	buckets map[string]*memBucket
}

var _ backend = (*memDB)(nil)

func newMemDB() *memDB { return &memDB{buckets: map[string]*memBucket{}} }

func (m *memDB) view(fn func(kv) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return fn(&memKV{db: m})
}

func (m *memDB) update(fn func(kv) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := &memKV{db: m, writable: true}
	committed := false
	defer func() {
		if !committed {
			k.rollback()
		}
	}()
	if err := fn(k); err != nil {
		return err
	}
	committed = true
	return nil
}

func (m *memDB) close() error { return nil }

func (m *memDB) where() string { return "the in-memory state" }

// memBucket is one bucket: values by key, and the keys in order.
type memBucket struct {
	keys []string
	vals map[string][]byte
}

func (b *memBucket) set(key string, val []byte) {
	if _, ok := b.vals[key]; !ok {
		i := sort.SearchStrings(b.keys, key)
		b.keys = append(b.keys, "")
		copy(b.keys[i+1:], b.keys[i:])
		b.keys[i] = key
	}
	b.vals[key] = val
}

func (b *memBucket) remove(key string) {
	if _, ok := b.vals[key]; !ok {
		return
	}
	i := sort.SearchStrings(b.keys, key)
	b.keys = append(b.keys[:i], b.keys[i+1:]...)
	delete(b.vals, key)
}

// memKV is a kv over one memory transaction. undo holds, for every write
// of an update, what the key held before (nil: nothing).
type memKV struct {
	db       *memDB
	writable bool
	undo     []memUndo
}

type memUndo struct {
	bucket, key string
	old         []byte
}

var _ kv = (*memKV)(nil)

var errReadOnly = errors.New("write in a read-only transaction")

func (k *memKV) get(bucket, key string) []byte {
	if b := k.db.buckets[bucket]; b != nil {
		return b.vals[key]
	}
	return nil
}

func (k *memKV) put(bucket, key string, val []byte) error {
	if err := k.check(bucket, key); err != nil {
		return err
	}
	if len(key) == 0 || len(key) > maxKeySize {
		return fmt.Errorf("put %q in bucket %s: key length %d not in 1..%d", key, bucket, len(key), maxKeySize)
	}
	b := k.db.buckets[bucket]
	if b == nil {
		b = &memBucket{vals: map[string][]byte{}}
		k.db.buckets[bucket] = b
	}
	k.undo = append(k.undo, memUndo{bucket, key, b.vals[key]})
	b.set(key, append([]byte{}, val...))
	return nil
}

func (k *memKV) delete(bucket, key string) error {
	if err := k.check(bucket, key); err != nil {
		return err
	}
	b := k.db.buckets[bucket]
	if b == nil || b.vals[key] == nil {
		return nil
	}
	k.undo = append(k.undo, memUndo{bucket, key, b.vals[key]})
	b.remove(key)
	return nil
}

func (k *memKV) scan(bucket, prefix string, fn func(string, []byte) error) error {
	b := k.db.buckets[bucket]
	if b == nil {
		return nil
	}
	for i := sort.SearchStrings(b.keys, prefix); i < len(b.keys) && strings.HasPrefix(b.keys[i], prefix); i++ {
		if err := fn(b.keys[i], b.vals[b.keys[i]]); err != nil {
			return err
		}
	}
	return nil
}

func (k *memKV) check(bucket, key string) error {
	if !k.writable {
		return fmt.Errorf("change %q in bucket %s: %w", key, bucket, errReadOnly)
	}
	return nil
}

// rollback plays the journal back, newest write first.
func (k *memKV) rollback() {
	for i := len(k.undo) - 1; i >= 0; i-- {
		u := k.undo[i]
		b := k.db.buckets[u.bucket]
		if u.old == nil {
			b.remove(u.key)
		} else {
			b.set(u.key, u.old)
		}
	}
	k.undo = nil
}
