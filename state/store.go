package state

import "fmt"

// Store is docker-cni's state: a bbolt database (Open, OpenReadOnly) or a
// map in memory (NewMemory), used through transactions.
type Store struct {
	b        backend
	imported int
	// fresh, movedAside and readOnly are what Open found (see Fresh,
	// MovedAside, ReadOnly).
	fresh      bool
	movedAside string
	corrupt    error
	readOnly   string
}

// NewMemory returns a Store kept in memory, for handler tests. It behaves
// as the database does: an Update is all or nothing, indexes are kept,
// and records are copies that callers never share with the store.
func NewMemory() *Store { return &Store{b: newMemDB()} }

// Imported is how many records of the previous release's JSON tables Open
// imported (0 when it imported none).
func (s *Store) Imported() int { return s.imported }

// Close releases the database and its lock.
func (s *Store) Close() error { return s.b.close() }

// View runs fn in a read-only transaction. fn must not start another
// transaction.
func (s *Store) View(fn func(*Tx) error) error {
	return s.b.view(func(k kv) error { return fn(&Tx{kv: k}) })
}

// Update runs fn in a read-write transaction, committed (durably, for the
// database) only if fn returns nil: all of fn's writes or none. fn's error
// is returned as it is. fn must not start another transaction.
func (s *Store) Update(fn func(*Tx) error) error {
	if s.readOnly != "" {
		return fmt.Errorf("state database %s is read-only (%s): nothing was changed", s.b.where(), s.readOnly)
	}
	var fnErr error
	err := s.b.update(func(k kv) error {
		fnErr = fn(&Tx{kv: k})
		return fnErr
	})
	if err != nil && err != fnErr {
		return fmt.Errorf("write state database %s: %w: nothing was changed", s.b.where(), err)
	}
	return err
}

// Read runs f in a read-only transaction and returns what it read: the
// one-line form of View for a single query.
func Read[T any](s *Store, f func(*Tx) (T, error)) (T, error) {
	var out T
	err := s.View(func(tx *Tx) (err error) {
		out, err = f(tx)
		return err
	})
	return out, err
}
