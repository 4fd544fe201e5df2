package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Open returns a Store keeping its records under dir.
func Open(dir string) (*Store, error) {
	s := &Store{}
	var err error
	if s.Pools, err = newFileTable[Pool](filepath.Join(dir, "pools")); err != nil {
		return nil, err
	}
	if s.Reservations, err = newFileTable[Reservation](filepath.Join(dir, "reservations")); err != nil {
		return nil, err
	}
	if s.Networks, err = newFileTable[Network](filepath.Join(dir, "networks")); err != nil {
		return nil, err
	}
	if s.Endpoints, err = newFileTable[Endpoint](filepath.Join(dir, "endpoints")); err != nil {
		return nil, err
	}
	return s, nil
}

type fileTable[T any] struct {
	dir string
	mu  sync.RWMutex
}

var _ Table[Pool] = (*fileTable[Pool])(nil)

func newFileTable[T any](dir string) (*fileTable[T], error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	return &fileTable[T]{dir: dir}, nil
}

// fileName maps an ID to a file name; IDs may hold '/' and ':' (pool IDs,
// addresses), so they are path-escaped.
func (t *fileTable[T]) path(id string) string {
	return filepath.Join(t.dir, url.PathEscape(id)+".json")
}

func (t *fileTable[T]) Get(id string) (*T, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.read(t.path(id))
}

func (t *fileTable[T]) read(path string) (*T, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var rec T
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return &rec, nil
}

func (t *fileTable[T]) Put(id string, rec *T) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return WriteFileAtomic(t.path(id), b, 0o600)
}

func (t *fileTable[T]) Delete(id string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	err := os.Remove(t.path(id))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(t.dir)
}

func (t *fileTable[T]) List() ([]*T, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*T
	for _, n := range names {
		rec, err := t.read(filepath.Join(t.dir, n))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// WriteFileAtomic writes data to path so that a reader (or a crash) sees the
// old content or the new, never a part: temp file in the same dir, write,
// fsync, close, rename, fsync the dir.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (retErr error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
