package state_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

// writeLegacy writes rec as the previous release's file store did: one
// indented JSON file per record, named by the escaped key.
func writeLegacy(t *testing.T, dir, table, key string, rec any) {
	t.Helper()
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, table, url.PathEscape(key)+".json"), string(b))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// legacyIDs are the awkward IDs the import takes: names starting with '.'
// are skipped as temp files.
func legacyIDs() []string {
	return slices.DeleteFunc(slices.Clone(awkwardIDs), func(id string) bool { return strings.HasPrefix(id, ".") })
}

// makeLegacy fills dir with the previous release's tables, temp files and
// strays included, and returns how many records they hold.
func makeLegacy(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for i, id := range legacyIDs() {
		e := endpoint(id)
		e.NetworkID = "n" + string(rune('0'+i%2))
		r := reservation(id, "10.99.0.2")
		r.Key, r.Gateway = id+"|10.99.0.2", ""
		writeLegacy(t, dir, "pools", id, pool(id))
		writeLegacy(t, dir, "networks", id, network(id))
		writeLegacy(t, dir, "endpoints", id, e)
		writeLegacy(t, dir, "reservations", r.Key, r)
		n += 4
	}
	for name, content := range map[string]string{
		".p%2F2.json.tmp123456": `{"ID": "p/2", "Subn`,
		".junk.json":            `not json`,
		"README":                "not a record",
	} {
		writeFile(t, filepath.Join(dir, "pools", name), content)
	}
	return n
}

func TestLegacyImport(t *testing.T) {
	dir := t.TempDir()
	n := makeLegacy(t, dir)
	s := open(t, dir)
	if s.Imported() != n {
		t.Errorf("Imported() = %d, want %d", s.Imported(), n)
	}
	want := sorted(legacyIDs())
	view(t, s, func(tx *state.Tx) error {
		ps, err1 := tx.Pools()
		es, err2 := tx.Endpoints()
		rs, err3 := tx.ReservationsAt("10.99.0.2")
		ports, err4 := tx.PublishedPorts()
		n0, err5 := tx.EndpointsOf("n0")
		onSubnet, err6 := tx.PoolsOnSubnet("10.99.0.0/24")
		check(t, "Pools", ids(ps, poolID), want)
		check(t, "Endpoints", ids(es, endpointID), want)
		check(t, "PoolsOnSubnet", ids(onSubnet, poolID), want)
		if len(rs) != len(want) || len(n0) != (len(want)+1)/2 || len(ports) != 1 {
			t.Errorf("indexes after import: %d reservations at the address, %d endpoints of n0, ports %v",
				len(rs), len(n0), ports)
		}
		for _, e := range es {
			w := endpoint(e.ID)
			w.NetworkID = e.NetworkID
			same(t, e, w)
		}
		return errors.Join(err1, err2, err3, err4, err5, err6)
	})
	checkIndexes(t, s)
	check(t, "state dir", entries(t, dir), []string{"imported-json", "state.db"})
	check(t, "imported-json", entries(t, filepath.Join(dir, "imported-json")),
		[]string{"endpoints", "networks", "pools", "reservations"})
	if got := len(entries(t, filepath.Join(dir, "imported-json", "pools"))); got != len(want)+3 {
		t.Errorf("the kept pools table holds %d files, want %d", got, len(want)+3)
	}

	before := dump(t, s)
	closeStore(t, s)
	s = open(t, dir)
	defer s.Close()
	if s.Imported() != 0 {
		t.Errorf("the second Open imported %d records", s.Imported())
	}
	if after := dump(t, s); !reflect.DeepEqual(after, before) {
		t.Error("the second Open changed the store")
	}
}

func TestNoLegacy(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	if s.Imported() != 0 {
		t.Errorf("Imported() = %d in a fresh dir", s.Imported())
	}
	check(t, "state dir", entries(t, dir), []string{"state.db"})
}

// TestLegacyEmptyTables: the previous release made all four dirs at start,
// so a host that never had a network still has them.
func TestLegacyEmptyTables(t *testing.T) {
	dir := t.TempDir()
	for _, table := range []string{"pools", "networks", "endpoints", "reservations"} {
		if err := os.MkdirAll(filepath.Join(dir, table), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "imported-json", "pools"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := open(t, dir)
	defer s.Close()
	if s.Imported() != 0 {
		t.Errorf("Imported() = %d", s.Imported())
	}
	check(t, "state dir", entries(t, dir), []string{"imported-json", "state.db"})
	check(t, "imported-json", entries(t, filepath.Join(dir, "imported-json")),
		[]string{"endpoints", "networks", "pools", "pools.1", "reservations"})
}

func TestLegacyCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":  `{"ID": "p/bad", "Subnet": `,
		"empty":      ``,
		"wrong key":  `{"ID": "p/other"}`,
		"not a pool": `[1, 2]`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			n := makeLegacy(t, dir)
			bad := filepath.Join(dir, "pools", "p%2Fbad.json")
			writeFile(t, bad, content)
			s, err := state.Open(dir)
			if err == nil {
				s.Close()
				t.Fatal("Open with a corrupt legacy record succeeded")
			}
			if !strings.Contains(err.Error(), bad) {
				t.Errorf("Open: %v; want an error naming %s", err, bad)
			}
			check(t, "state dir", entries(t, dir), []string{"endpoints", "networks", "pools", "reservations", "state.db"})
			if _, err := state.OpenReadOnly(dir); err == nil {
				t.Error("OpenReadOnly of a database whose import failed succeeded")
			}
			// Nothing was imported: once the file is gone, the next Open
			// imports every other record.
			if err := os.Remove(bad); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir)
			defer s.Close()
			if s.Imported() != n {
				t.Errorf("Imported() after the fix = %d, want %d", s.Imported(), n)
			}
		})
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
