package integration

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

// tmpfs mounts a tmpfs of size (e.g. "1m") on a new dir, unmounted at the
// end of the test.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func putPool(s *state.Store, id string, pad int) error {
	return s.Update(func(tx *state.Tx) error {
		return tx.PutPool(&state.Pool{ID: id, Subnet: "10.231.200.0/24", CNINetwork: "n", IPAMConf: json.RawMessage(`{"pad":"` + strings.Repeat("x", pad) + `"}`)})
	})
}

// TestStateDiskFull: a full disk fails the write that needs the space,
// naming the database, and loses nothing already recorded.
func TestStateDiskFull(t *testing.T) {
	needRoot(t)
	dir := tmpfs(t, "2m")
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := putPool(s, "kept", 100); err != nil {
		t.Fatal(err)
	}
	// Fill what is left of the filesystem.
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := fill.Write(buf); err != nil {
			break
		}
	}
	fill.Close()
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		werr = putPool(s, "big"+string(rune('a'+i)), 256<<10)
	}
	if werr == nil {
		t.Fatal("no write failed on a full disk")
	}
	t.Logf("a write on a full disk: %v", werr)
	if !errors.Is(werr, syscall.ENOSPC) && !strings.Contains(werr.Error(), "no space left") || !strings.Contains(werr.Error(), filepath.Join(dir, "state.db")) {
		t.Errorf("write on a full disk failed with %q; want the database's path and ENOSPC", werr)
	}
	if err := s.Close(); err != nil {
		t.Logf("close after ENOSPC: %v", err)
	}
	os.Remove(filepath.Join(dir, "fill"))
	s, err = state.Open(dir)
	if err != nil {
		t.Fatalf("reopen after a full disk: %v", err)
	}
	defer s.Close()
	if aside, why := s.MovedAside(); aside != "" {
		t.Fatalf("the database was taken for corrupt after a full disk: %v", why)
	}
	if err := s.View(func(tx *state.Tx) error { _, err := tx.Pool("kept"); return err }); err != nil {
		t.Errorf("a record made before the disk filled is lost: %v", err)
	}
}

// TestStateReadOnlyMount: a state dir on a read-only mount is served
// read-only: reads work, writes fail naming the database, and nothing
// recorded is lost.
func TestStateReadOnlyMount(t *testing.T) {
	needRoot(t)
	dir := tmpfs(t, "4m")
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := putPool(s, "kept", 10); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	s, err = state.Open(dir)
	if err != nil {
		t.Fatalf("open on a read-only mount: %v", err)
	}
	defer s.Close()
	if s.ReadOnly() == "" {
		t.Error("ReadOnly() is empty on a read-only mount")
	}
	if err := s.View(func(tx *state.Tx) error { _, err := tx.Pool("kept"); return err }); err != nil {
		t.Errorf("read on a read-only mount: %v", err)
	}
	err = putPool(s, "new", 10)
	t.Logf("a write on a read-only mount: %v", err)
	if err == nil || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), filepath.Join(dir, "state.db")) {
		t.Errorf("write on a read-only mount: %v; want it refused naming the database", err)
	}
}
