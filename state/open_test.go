package state_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/state"
)

func open(t *testing.T, dir string) *state.Store {
	t.Helper()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func closeStore(t *testing.T, s *state.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	putAwkward(t, s)
	before := dump(t, s)
	closeStore(t, s)
	s = open(t, dir)
	defer s.Close()
	if after := dump(t, s); !reflect.DeepEqual(after, before) {
		t.Errorf("after reopening the store holds\n%q\nwant\n%q", after, before)
	}
	view(t, s, func(tx *state.Tx) error {
		e, err := tx.Endpoint(awkwardIDs[0])
		same(t, e, endpoint(awkwardIDs[0]))
		return err
	})
	checkIndexes(t, s)
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "docker-cni")
	s := open(t, dir)
	defer s.Close()
	for path, want := range map[string]fs.FileMode{dir: 0o700, filepath.Join(dir, "state.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

// inUse checks that open fails soon with the "in use" error naming the
// database file.
func inUse(t *testing.T, what, dir string, open func(string) (*state.Store, error)) {
	t.Helper()
	start := time.Now()
	s, err := open(dir)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("%s of a held dir took %v", what, took)
	}
	if err == nil {
		s.Close()
		t.Fatalf("%s of a held dir succeeded", what)
	}
	db := filepath.Join(dir, "state.db")
	if !errors.Is(err, state.ErrInUse) || !strings.Contains(err.Error(), "in use by another docker-cni process") ||
		!strings.Contains(err.Error(), db) {
		t.Errorf("%s of a held dir: %v; want an error saying it is in use and naming %s", what, err, db)
	}
}

func TestLocking(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	update(t, s, func(tx *state.Tx) error { return tx.PutPool(pool("p/1")) })
	inUse(t, "second Open", dir, state.Open)
	inUse(t, "OpenReadOnly", dir, state.OpenReadOnly)
	closeStore(t, s)

	ro, err := state.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("OpenReadOnly after Close: %v", err)
	}
	view(t, ro, func(tx *state.Tx) error {
		p, err := tx.Pool("p/1")
		same(t, p, pool("p/1"))
		return err
	})
	if err := ro.Update(func(tx *state.Tx) error { return tx.PutPool(pool("p/2")) }); err == nil {
		t.Error("Update of a read-only store succeeded")
	}
	ro2, err := state.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("a second OpenReadOnly: %v", err)
	}
	inUse(t, "Open while read-only", dir, state.Open)
	closeStore(t, ro)
	closeStore(t, ro2)
	closeStore(t, open(t, dir))
}

func TestOpenReadOnlyMissing(t *testing.T) {
	dir := t.TempDir()
	_, err := state.OpenReadOnly(dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("OpenReadOnly of an empty dir: %v, want an error saying the database does not exist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly made the database: %v", err)
	}
	if _, err := state.OpenReadOnly(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly of a missing dir: %v", err)
	}
}

func TestConcurrentUpdates(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					if err := churn(s, w, i); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		view(t, s, func(tx *state.Tx) error {
			es, err := tx.Endpoints()
			if len(es) != 8*10 {
				t.Errorf("after concurrent puts and deletes: %d endpoints, want 80", len(es))
			}
			ps, err2 := tx.PublishedPorts()
			if len(ps) != 8*10 {
				t.Errorf("after concurrent puts and deletes: %d published ports, want 80", len(ps))
			}
			return errors.Join(err, err2)
		})
		checkIndexes(t, s)
	})
}

// churn is one worker's step: put an endpoint and its reservation, read
// them back through the indexes, and delete every other one.
func churn(s *state.Store, w, i int) error {
	id := fmt.Sprintf("e/%d|%d", w, i)
	nw := fmt.Sprintf("n%d", w)
	addr := fmt.Sprintf("10.%d.0.%d", w, i)
	err := s.Update(func(tx *state.Tx) error {
		e := endpointOn(id, nw, fmt.Sprintf(`[{"hostPort":%d,"protocol":"tcp"}]`, 1000*w+i))
		return errors.Join(tx.PutEndpoint(e), tx.PutReservation(reservation("p", addr)))
	})
	if err != nil {
		return err
	}
	err = s.View(func(tx *state.Tx) error {
		es, err := tx.EndpointsOf(nw)
		rs, err2 := tx.ReservationsAt(addr)
		if len(es) == 0 || len(rs) != 1 {
			return fmt.Errorf("worker %d step %d: %d endpoints of %s, %d reservations at %s", w, i, len(es), nw, len(rs), addr)
		}
		return errors.Join(err, err2)
	})
	if err != nil || i%2 == 1 {
		return err
	}
	return s.Update(func(tx *state.Tx) error {
		return errors.Join(tx.DeleteEndpoint(id), tx.DeleteReservation("p", addr))
	})
}

func TestInstance(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Instance("")
	if err != nil || len(a) != 8 {
		t.Fatalf("Instance = %q, %v", a, err)
	}
	if b, _ := s.Instance(""); b != a {
		t.Errorf("Instance changed: %q then %q", a, b)
	}
	s.Close()
	s, err = state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, _ := s.Instance(""); c != a {
		t.Errorf("Instance after reopening = %q, want %q", c, a)
	}
	if m, _ := state.NewMemory().Instance(""); m == "" || m == a {
		t.Errorf("memory store instance %q", m)
	}
}
