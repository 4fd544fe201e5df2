package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const (
	// dbFile is the database's name in the state dir.
	dbFile = "state.db"
	// lockTimeout is how long Open waits for another process's lock.
	lockTimeout = time.Second
)

// ErrInUse is returned, wrapped, when another process holds the database.
var ErrInUse = errors.New("in use by another docker-cni process")

// Open opens the database dir/state.db, making dir (0700) and the file
// (0600) if needed, and holds it locked for this process alone. Opening a
// new database imports the previous release's JSON tables found in dir,
// all in one transaction, then moves them under dir/imported-json.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := dbPath(dir)
	db, err := openChecked(path)
	aside, corrupt := "", error(nil)
	switch {
	case errors.Is(err, ErrCorrupt):
		corrupt = err
		if aside, err = moveAside(path, time.Now()); err == nil {
			db, err = openChecked(path)
		}
	case err != nil && isReadOnlyFS(err):
		return openReadOnlyFallback(path, err)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{b: boltDB{db: db, path: path}, movedAside: aside, corrupt: corrupt}
	if err := s.setUp(dir); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// openReadOnlyFallback opens the database of a state dir that cannot be
// written (a read-only mount, a wrong owner) for reading, so that the
// daemon serves what it recorded and fails only the requests that must
// write. Without a database there is nothing to serve.
func openReadOnlyFallback(path string, why error) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("state dir %s cannot be written (%w) and has no state database", filepath.Dir(path), why)
	}
	db, err := openBolt(path, true)
	if err != nil {
		return nil, fmt.Errorf("state database %s cannot be opened for writing (%w) nor for reading: %w", path, why, err)
	}
	s := &Store{b: boltDB{db: db, path: path}, readOnly: why.Error()}
	if err := s.View(func(tx *Tx) error { return checkSchema(tx, path) }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// OpenReadOnly opens the existing database dir/state.db to read it, for
// the CLI while the daemon is stopped. It fails with ErrInUse while a
// daemon holds the database, and with fs.ErrNotExist when there is none.
func OpenReadOnly(dir string) (*Store, error) {
	path := filepath.Join(dir, dbFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state database %s does not exist: %w", path, fs.ErrNotExist)
	}
	db, err := openBolt(path, true)
	if err != nil {
		return nil, err
	}
	s := &Store{b: boltDB{db: db, path: path}}
	if err := s.View(func(tx *Tx) error { return checkSchema(tx, path) }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func openBolt(path string, readOnly bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      lockTimeout,
		FreelistType: bolt.FreelistMapType,
		NoSync:       false,
		ReadOnly:     readOnly,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("state dir %s is %w: %s stayed locked for %v", filepath.Dir(path), ErrInUse, path, lockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	return db, nil
}

// setUp checks the schema of an existing database; a new one gets the
// schema and the legacy records in one transaction, and then the legacy
// tables are moved away.
func (s *Store) setUp(dir string) error {
	path := dbPath(dir)
	legacy, err := findLegacy(dir)
	if err != nil {
		return err
	}
	fresh := false
	imported := 0
	err = s.Update(func(tx *Tx) error {
		if v := tx.kv.get(bucketMeta, schemaKey); v != nil {
			return checkSchema(tx, path)
		}
		fresh, s.fresh = true, true
		n, err := importLegacy(tx, dir, legacy)
		if err != nil {
			return err
		}
		imported = n
		return tx.kv.put(bucketMeta, schemaKey, []byte(schemaVersion))
	})
	if err != nil || !fresh || len(legacy) == 0 {
		return err
	}
	s.imported = imported
	if err := moveLegacy(dir, legacy); err != nil {
		return fmt.Errorf("imported %d legacy records into %s: %w", imported, path, err)
	}
	return nil
}
