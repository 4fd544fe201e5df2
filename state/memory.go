package state

import (
	"encoding/json"
	"sort"
	"sync"
)

// NewMemory returns a Store that keeps records in memory, for handler tests.
// Records are copied through JSON, as the file store does, so callers cannot
// alias stored state.
func NewMemory() *Store {
	return &Store{
		Pools:        &memTable[Pool]{m: map[string][]byte{}},
		Reservations: &memTable[Reservation]{m: map[string][]byte{}},
		Networks:     &memTable[Network]{m: map[string][]byte{}},
		Endpoints:    &memTable[Endpoint]{m: map[string][]byte{}},
	}
}

type memTable[T any] struct {
	mu sync.Mutex
	m  map[string][]byte
}

var _ Table[Pool] = (*memTable[Pool])(nil)

func (t *memTable[T]) Get(id string) (*T, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, ok := t.m[id]
	if !ok {
		return nil, ErrNotFound
	}
	var rec T
	return &rec, json.Unmarshal(b, &rec)
}

func (t *memTable[T]) Put(id string, rec *T) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[id] = b
	return nil
}

func (t *memTable[T]) Delete(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
	return nil
}

func (t *memTable[T]) List() ([]*T, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]string, 0, len(t.m))
	for id := range t.m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]*T, 0, len(ids))
	for _, id := range ids {
		var rec T
		if err := json.Unmarshal(t.m[id], &rec); err != nil {
			return nil, err
		}
		out = append(out, &rec)
	}
	return out, nil
}
