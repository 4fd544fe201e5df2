package state_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

// filled makes a database in dir holding a few hundred records, closed.
func filled(t *testing.T, dir string) {
	t.Helper()
	s := open(t, dir)
	update(t, s, func(tx *state.Tx) error {
		for i := range 300 {
			id := strings.Repeat("e", 60) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + "00"
			if err := tx.PutEndpoint(endpoint(id)); err != nil {
				return err
			}
		}
		return tx.PutPool(pool("p"))
	})
	closeStore(t, s)
}

// scribble writes n pages of random bytes into the database file at
// random page offsets, as a torn write or a bad disk would.
func scribble(t *testing.T, path string, n int, r *rand.Rand) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	const page = 4096
	pages := fi.Size() / page
	buf := make([]byte, page)
	for range n {
		for i := range buf {
			buf[i] = byte(r.UintN(256))
		}
		if _, err := f.WriteAt(buf, r.Int64N(pages)*page); err != nil {
			t.Fatal(err)
		}
	}
}

// A database with random pages overwritten never makes Open panic or fail:
// it is moved aside (state.db.corrupt-<time>) and a new, empty one is
// made, or, where the scribbles missed everything that matters, it opens
// as it was.
func TestOpenCorrupt(t *testing.T) {
	moved := 0
	for seed := range uint64(40) {
		dir := t.TempDir()
		filled(t, dir)
		path := filepath.Join(dir, "state.db")
		scribble(t, path, 4, rand.New(rand.NewPCG(seed, 17)))
		s, err := state.Open(dir)
		if err != nil {
			t.Fatalf("seed %d: Open of a corrupt database failed: %v", seed, err)
		}
		if aside, why := s.MovedAside(); aside != "" {
			moved++
			t.Logf("seed %d: %v", seed, why)
			if !strings.HasPrefix(filepath.Base(aside), "state.db.corrupt-") {
				t.Errorf("seed %d: moved aside to %s", seed, aside)
			}
			if _, err := os.Stat(aside); err != nil {
				t.Errorf("seed %d: the corrupt database is not kept: %v", seed, err)
			}
			if !s.Fresh() {
				t.Errorf("seed %d: a database made after moving one aside is not Fresh", seed)
			}
		}
		// Whatever it opened must be whole: readable and writable.
		view(t, s, func(tx *state.Tx) error { _, err := tx.Endpoints(); return err })
		update(t, s, func(tx *state.Tx) error { return tx.PutPool(pool("after")) })
		closeStore(t, s)
	}
	if moved == 0 {
		t.Fatal("no seed corrupted the database: the test does not test")
	}
	t.Logf("%d of 40 scribbled databases were moved aside", moved)
}

func TestOpenNotADatabase(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "state.db"), []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	defer s.Close()
	if aside, _ := s.MovedAside(); aside == "" || !s.Fresh() {
		t.Errorf("a file that is no database: moved aside %q, fresh %v", aside, s.Fresh())
	}
}

// A record that does not decode makes the database corrupt too.
func TestOpenUndecodableRecord(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := state.PutRaw(s, "endpoints", "x", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	s = open(t, dir)
	defer s.Close()
	if aside, _ := s.MovedAside(); aside == "" {
		t.Error("a database with an undecodable record was kept")
	}
}

func TestOpenFreshAndKept(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if aside, _ := s.MovedAside(); !s.Fresh() || aside != "" {
		t.Errorf("new database: fresh %v, moved aside %q", s.Fresh(), aside)
	}
	closeStore(t, s)
	s = open(t, dir)
	defer s.Close()
	if s.Fresh() {
		t.Error("a reopened database says it is fresh")
	}
}

// A state dir that cannot be written is opened read-only: reads work,
// every write fails naming the database and the reason, and nothing
// recorded is lost.
func TestOpenReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only dirs; test/integration covers a read-only mount")
	}
	dir := t.TempDir()
	s := open(t, dir)
	update(t, s, func(tx *state.Tx) error { return tx.PutPool(pool("kept")) })
	closeStore(t, s)
	path := filepath.Join(dir, "state.db")
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if s.ReadOnly() == "" {
		t.Fatal("ReadOnly is empty for an unwritable database")
	}
	err := s.Update(func(tx *state.Tx) error { return tx.PutPool(pool("new")) })
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("write to a read-only database: %v", err)
	}
	view(t, s, func(tx *state.Tx) error {
		_, err := tx.Pool("kept")
		return err
	})
	if id, err := s.Instance("abcd1234"); err != nil || id != "abcd1234" {
		t.Errorf("Instance of a read-only database without one = %q, %v", id, err)
	}
}

func TestInstanceDerived(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if id, err := s.Instance("0011aabb"); err != nil || id != "0011aabb" {
		t.Fatalf("Instance(derive) of a new database = %q, %v", id, err)
	}
	if id, _ := s.Instance("ffffffff"); id != "0011aabb" {
		t.Errorf("a kept instance ID changed to %q", id)
	}
	closeStore(t, s)
	if a, b := state.DirInstance(dir), state.DirInstance(dir); a == "" || a != b || len(a) != 8 {
		t.Errorf("DirInstance(%s) = %q then %q", dir, a, b)
	}
	if a, b := state.DirInstance(dir), state.DirInstance(t.TempDir()); a == b {
		t.Errorf("two state dirs share the instance %q", a)
	}
	before := state.DirInstance(dir)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if after := state.DirInstance(dir); after != before {
		t.Errorf("a wiped state dir has instance %q, was %q", after, before)
	}
}
