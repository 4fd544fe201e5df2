package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// legacyTables are the dirs in which the previous release kept one JSON
// file per record, named url.PathEscape(key)+".json".
var legacyTables = []string{bucketPools, bucketReservations, bucketNetworks, bucketEndpoints}

// legacyBackup is where the imported tables are moved, never deleted.
const legacyBackup = "imported-json"

// findLegacy returns the legacy tables present in dir.
func findLegacy(dir string) ([]string, error) {
	var found []string
	for _, name := range legacyTables {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("look for legacy state: %w", err)
		}
		if fi.IsDir() {
			found = append(found, name)
		}
	}
	return found, nil
}

// importLegacy puts every record of the legacy tables in tx and returns
// how many there were.
func importLegacy(tx *Tx, dir string, tables []string) (int, error) {
	n := 0
	for _, name := range tables {
		paths, err := legacyFiles(filepath.Join(dir, name))
		if err != nil {
			return 0, err
		}
		for _, path := range paths {
			if err := importFile(tx, name, path); err != nil {
				return 0, fmt.Errorf("import legacy record %s: %w", path, err)
			}
			n++
		}
	}
	return n, nil
}

// legacyFiles lists the record files of one table, skipping dotfiles
// (temp files of interrupted writes) and names not ending in ".json".
func legacyFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list legacy table: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") && strings.HasSuffix(e.Name(), ".json") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths, nil
}

// importFile puts the record of one file of table in tx. The record's key
// must be the one its file name says.
func importFile(tx *Tx, table, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	key, err := url.PathUnescape(strings.TrimSuffix(filepath.Base(path), ".json"))
	if err != nil {
		return fmt.Errorf("file name: %w", err)
	}
	switch table {
	case bucketPools:
		return importRecord(b, key, func(p *Pool) string { return p.ID }, tx.PutPool)
	case bucketNetworks:
		return importRecord(b, key, func(n *Network) string { return n.ID }, tx.PutNetwork)
	case bucketEndpoints:
		return importRecord(b, key, func(e *Endpoint) string { return e.ID }, tx.PutEndpoint)
	case bucketReservations:
		return importRecord(b, key, func(r *Reservation) string { return reservationKey(r.PoolID, r.Address) }, tx.PutReservation)
	}
	return fmt.Errorf("no legacy table %s", table)
}

func importRecord[T any](b []byte, key string, keyOf func(*T) string, put func(*T) error) error {
	rec := new(T)
	if err := json.Unmarshal(b, rec); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if got := keyOf(rec); got != key {
		return fmt.Errorf("the record's key is %q, its file name says %q", got, key)
	}
	return put(rec)
}

// moveLegacy moves the imported tables under dir/imported-json, each to a
// name not taken yet there.
func moveLegacy(dir string, tables []string) error {
	backup := filepath.Join(dir, legacyBackup)
	if err := os.MkdirAll(backup, 0o700); err != nil {
		return fmt.Errorf("keep legacy tables: %w", err)
	}
	for _, name := range tables {
		to, err := freeName(filepath.Join(backup, name))
		if err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(dir, name), to); err != nil {
			return fmt.Errorf("keep legacy table: %w", err)
		}
	}
	return nil
}

// freeName returns path, or path.N for the first N that does not exist.
func freeName(path string) (string, error) {
	for i := 0; i < 1000; i++ {
		p := path
		if i > 0 {
			p = fmt.Sprintf("%s.%d", path, i)
		}
		_, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("keep legacy table: %w", err)
		}
	}
	return "", fmt.Errorf("keep legacy table: %s.1 to .999 all exist", path)
}
