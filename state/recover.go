package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrCorrupt marks a database that cannot be trusted: bbolt refused or
// panicked on it, its pages fail bbolt's consistency check, or a record
// does not decode.
var ErrCorrupt = errors.New("state database is corrupt")

// openChecked opens the database at path read-write and checks it whole.
// A corrupt database is an error wrapping ErrCorrupt (bbolt panics on some
// bad pages: they are recovered here, so that no panic reaches the
// daemon's start).
func openChecked(path string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				closeQuietly(db)
			}
			db, err = nil, fmt.Errorf("%w: %s: bbolt panicked: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = openBolt(path, false)
	if err != nil {
		if isCorruptOpen(err) {
			err = fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		return nil, err
	}
	if err := checkPages(db, path); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// isCorruptOpen says whether bbolt's Open failed on the file's content
// (rather than on access to it).
func isCorruptOpen(err error) bool {
	var errno syscall.Errno
	return !errors.Is(err, ErrInUse) && !errors.As(err, &errno) && !errors.Is(err, fs.ErrPermission)
}

// checkPages runs bbolt's consistency check over every page and reads
// every record as docker-cni's types.
func checkPages(db *bolt.DB, path string) error {
	return db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
		if err := decodeAll(&Tx{kv: boltKV{tx}}); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		}
		return nil
	})
}

// decodeAll reads every record of every table.
func decodeAll(tx *Tx) error {
	_, e1 := tx.Pools()
	_, e2 := tx.Networks()
	_, e3 := tx.Endpoints()
	_, e4 := tx.Reservations()
	_, e5 := tx.Intents()
	return errors.Join(e1, e2, e3, e4, e5)
}

// closeQuietly closes a database bbolt may panic on again.
func closeQuietly(db *bolt.DB) {
	defer func() { _ = recover() }()
	db.Close()
}

// moveAside renames a corrupt database to path.corrupt-<UTC time> and
// returns the new path, keeping it for a post-mortem.
func moveAside(path string, now time.Time) (string, error) {
	aside := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("move corrupt state database %s aside: %w", path, err)
	}
	return aside, nil
}

// isReadOnlyFS says whether opening the database for writing failed
// because the state dir cannot be written.
func isReadOnlyFS(err error) bool {
	return errors.Is(err, syscall.EROFS) || errors.Is(err, fs.ErrPermission)
}

// MovedAside is where Open moved a corrupt database before it started a
// new one, and what was wrong with it ("", nil when it did not).
func (s *Store) MovedAside() (string, error) { return s.movedAside, s.corrupt }

// ReadOnly says why the database is open read-only ("" when writable):
// every Update then fails with that reason, and nothing recorded is lost.
func (s *Store) ReadOnly() string { return s.readOnly }

// Fresh says whether Open made a new, empty database (first start, a lost
// or a corrupt one): its records must be rebuilt from the ground truth.
func (s *Store) Fresh() bool { return s.fresh }

// dbPath is the database file of a state dir.
func dbPath(dir string) string { return filepath.Join(dir, dbFile) }
