package state_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/state"
)

// stores are the two implementations; every behaviour below must hold for
// both, since handler tests run against the memory store and the daemon
// against the file store.
var stores = []struct {
	name string
	open func(t *testing.T) *state.Store
}{
	{"file", func(t *testing.T) *state.Store {
		s, err := state.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"memory", func(*testing.T) *state.Store { return state.NewMemory() }},
}

var created = time.Date(2026, 11, 22, 22, 16, 5, 123456789, time.UTC)

// IDs of the shapes docker-cni uses: pool IDs hold '/', reservation keys
// '|', IPv6 addresses ':'.
var awkwardIDs = []string{
	"docker-cni-10.99.0.0-24/1a2b3c4d",
	"cniprobe/10.99.0.0/24",
	"docker-cni-fd00-99---64/1a2b3c4d|fd00:99::2",
	"docker-cni-10.99.0.0-24/1a2b3c4d|10.99.0.2",
	"fe80::1%eth0",
	"a%2Fb",
	"a b?c#d&e=f+g",
	"..",
	".hidden",
	"x.json.tmp123",
	"12c573030c43d3b399d3ed66a7d5afc2a1f09a5ad9c59ce73763dbc42ab0dec6",
}

func pool(id string) *state.Pool {
	return &state.Pool{
		ID: id, AddressSpace: "CniLocal", Subnet: "10.99.0.0/24", Range: "10.99.0.128/25", Gateway: "10.99.0.1",
		CNINetwork: "docker-cni-10.99.0.0-24", IPAMType: "host-local", CNIVersion: "1.0.0",
		IPAMConf:  json.RawMessage(`{"cniVersion":"1.0.0","ipam":{"type":"host-local"},"name":"docker-cni-10.99.0.0-24"}`),
		NetworkID: "12c573030c43d3b399d3ed66a7d5afc2a1f09a5ad9c59ce73763dbc42ab0dec6", Created: created,
	}
}

func endpoint(id string) *state.Endpoint {
	return &state.Endpoint{
		ID: id, NetworkID: "12c573030c43", Addresses: []string{"10.99.0.2/24", "fd00:99::2/64"}, Created: created,
		Attachment: &state.Attachment{
			Mode: "move", SandboxKey: "/var/run/docker/netns/47ea32074d8a", NetNS: "/run/docker-cni/scratch/cf5dd77156b0",
			ScratchNS: "/run/docker-cni/scratch/cf5dd77156b0", ContainerID: id, IfName: "eth0", HostIfName: "dcnicf5dd77156b",
			MAC: "02:42:0a:63:00:02", Args: [][2]string{{"IgnoreUnknown", "1"}},
			Capability: map[string]any{"portMappings": []any{map[string]any{"hostPort": float64(8080), "containerPort": float64(80), "protocol": "tcp"}}},
			Conflist:   json.RawMessage(`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}`),
			Result:     json.RawMessage(`{"cniVersion":"1.0.0","ips":[{"address":"10.99.0.2/24"}]}`),
			Added:      created,
		},
	}
}

// same compares records as JSON values: RawMessage fields come back with
// their whitespace normalised, which is not a difference a reader sees.
func same(t *testing.T, got, want any) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var gv, wv any
	if err := json.Unmarshal(g, &gv); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(w, &wv); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gv, wv) {
		t.Errorf("record differs\n got %s\nwant %s", g, w)
	}
}

func poolIDs(t *testing.T, tb state.Table[state.Pool]) []string {
	t.Helper()
	recs, err := tb.List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	return ids
}

var behaviours = []struct {
	name string
	run  func(t *testing.T, s *state.Store)
}{
	{"put then get returns the record", func(t *testing.T, s *state.Store) {
		for _, id := range awkwardIDs {
			if err := s.Pools.Put(id, pool(id)); err != nil {
				t.Fatalf("Put(%q): %v", id, err)
			}
		}
		for _, id := range awkwardIDs {
			got, err := s.Pools.Get(id)
			if err != nil {
				t.Fatalf("Get(%q): %v", id, err)
			}
			same(t, got, pool(id))
			if !got.Created.Equal(created) {
				t.Errorf("Get(%q).Created = %v, want %v", id, got.Created, created)
			}
		}
	}},
	{"every table round-trips its records", func(t *testing.T, s *state.Store) {
		res := &state.Reservation{Key: "p/1|10.99.0.2", PoolID: "p/1", Address: "10.99.0.2", OwnerID: "docker-cni-ipam-1", IfName: "eth0", Name: "goofy_bose", Created: created}
		nw := &state.Network{
			ID: "12c573030c43", CNINetwork: "k8s-pod-network", Bound: true, ConfFile: "/etc/cni/net.d/10-k8s.conflist", CNIVersion: "1.0.0",
			Conflist: json.RawMessage(`{"name":"k8s-pod-network","plugins":[{"type":"bridge"}]}`), PoolIDs: []string{"p/1", "p/2"},
			Gateways: []string{"10.99.0.1", "fd00:99::1"}, Internal: true, BridgeName: "cni-12c573030c", Created: created,
		}
		ep := endpoint("cf5dd77156b0")
		if err := s.Reservations.Put(res.Key, res); err != nil {
			t.Fatal(err)
		}
		if err := s.Networks.Put(nw.ID, nw); err != nil {
			t.Fatal(err)
		}
		if err := s.Endpoints.Put(ep.ID, ep); err != nil {
			t.Fatal(err)
		}
		gr, err := s.Reservations.Get(res.Key)
		if err != nil {
			t.Fatal(err)
		}
		same(t, gr, res)
		gn, err := s.Networks.Get(nw.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, gn, nw)
		ge, err := s.Endpoints.Get(ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, ge, ep)
		if ge.Attachment == nil || ge.Attachment.Args[0] != [2]string{"IgnoreUnknown", "1"} {
			t.Errorf("attachment args lost: %+v", ge.Attachment)
		}
		// Tables are separate: the same ID in another table is another record.
		if _, err := s.Pools.Get(res.Key); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Pools.Get of a reservation key: %v, want ErrNotFound", err)
		}
	}},
	{"get of a missing record is ErrNotFound", func(t *testing.T, s *state.Store) {
		for _, id := range append([]string{"missing", ""}, awkwardIDs...) {
			rec, err := s.Pools.Get(id)
			if !errors.Is(err, state.ErrNotFound) || rec != nil {
				t.Errorf("Get(%q) = %v, %v; want nil, ErrNotFound", id, rec, err)
			}
		}
	}},
	{"put overwrites", func(t *testing.T, s *state.Store) {
		p := pool("p/1")
		if err := s.Pools.Put(p.ID, p); err != nil {
			t.Fatal(err)
		}
		p.NetworkID, p.Range = "", ""
		if err := s.Pools.Put(p.ID, p); err != nil {
			t.Fatal(err)
		}
		got, err := s.Pools.Get(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		same(t, got, p)
		if ids := poolIDs(t, s.Pools); !reflect.DeepEqual(ids, []string{"p/1"}) {
			t.Errorf("List after overwrite = %q, want one record", ids)
		}
	}},
	{"delete removes, and deleting again succeeds", func(t *testing.T, s *state.Store) {
		for _, id := range awkwardIDs {
			if err := s.Pools.Put(id, pool(id)); err != nil {
				t.Fatal(err)
			}
		}
		gone := awkwardIDs[1]
		for i := 0; i < 2; i++ {
			if err := s.Pools.Delete(gone); err != nil {
				t.Fatalf("Delete(%q) #%d: %v", gone, i+1, err)
			}
		}
		if _, err := s.Pools.Get(gone); !errors.Is(err, state.ErrNotFound) {
			t.Errorf("Get after Delete: %v, want ErrNotFound", err)
		}
		if err := s.Pools.Delete("never-existed"); err != nil {
			t.Errorf("Delete of a missing record: %v", err)
		}
		var want []string
		for _, id := range awkwardIDs {
			if id != gone {
				want = append(want, id)
			}
		}
		sort.Strings(want)
		if ids := poolIDs(t, s.Pools); !reflect.DeepEqual(ids, want) {
			t.Errorf("List after Delete = %q, want %q", ids, want)
		}
	}},
	{"list returns every record", func(t *testing.T, s *state.Store) {
		if ids := poolIDs(t, s.Pools); len(ids) != 0 {
			t.Errorf("List of an empty table = %q", ids)
		}
		for _, id := range awkwardIDs {
			if err := s.Pools.Put(id, pool(id)); err != nil {
				t.Fatal(err)
			}
		}
		want := append([]string(nil), awkwardIDs...)
		sort.Strings(want)
		if ids := poolIDs(t, s.Pools); !reflect.DeepEqual(ids, want) {
			t.Errorf("List = %q, want %q", ids, want)
		}
		recs, err := s.Pools.List()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			same(t, r, pool(r.ID))
		}
	}},
	{"records do not alias the caller's values", func(t *testing.T, s *state.Store) {
		p := pool("p/1")
		if err := s.Pools.Put(p.ID, p); err != nil {
			t.Fatal(err)
		}
		p.Subnet = "changed after Put"
		got, err := s.Pools.Get("p/1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Subnet != "10.99.0.0/24" {
			t.Errorf("a change after Put reached the store: Subnet %q", got.Subnet)
		}
		got.Subnet = "changed after Get"
		again, err := s.Pools.Get("p/1")
		if err != nil {
			t.Fatal(err)
		}
		if again.Subnet != "10.99.0.0/24" {
			t.Errorf("a change to a returned record reached the store: Subnet %q", again.Subnet)
		}
		ep := endpoint("e1")
		if err := s.Endpoints.Put(ep.ID, ep); err != nil {
			t.Fatal(err)
		}
		ep.Addresses[0] = "changed"
		ep.Attachment.Capability["portMappings"] = nil
		ge, err := s.Endpoints.Get("e1")
		if err != nil {
			t.Fatal(err)
		}
		same(t, ge, endpoint("e1"))
	}},
	{"concurrent use", func(t *testing.T, s *state.Store) {
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					id := fmt.Sprintf("p/%d|%d", w, i)
					if err := s.Pools.Put(id, pool(id)); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Pools.Get(id); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.Pools.List(); err != nil {
						t.Error(err)
						return
					}
					if i%2 == 0 {
						if err := s.Pools.Delete(id); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
		if ids := poolIDs(t, s.Pools); len(ids) != 8*10 {
			t.Errorf("after concurrent puts and deletes: %d records, want 80", len(ids))
		}
	}},
}

func TestStores(t *testing.T) {
	for _, st := range stores {
		for _, b := range behaviours {
			t.Run(st.name+"/"+b.name, func(t *testing.T) {
				b.run(t, st.open(t))
			})
		}
	}
}

// openFile opens a file store in a fresh directory and returns both.
func openFile(t *testing.T) (*state.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// names lists the entries of a directory.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name())
	}
	return ns
}

func TestFileStoreLayout(t *testing.T) {
	s, dir := openFile(t)
	if got, want := names(t, dir), []string{"endpoints", "networks", "pools", "reservations"}; !reflect.DeepEqual(got, want) {
		t.Errorf("state dir holds %q, want %q", got, want)
	}
	for _, id := range awkwardIDs {
		if err := s.Pools.Put(id, pool(id)); err != nil {
			t.Fatal(err)
		}
	}
	// One file per record, named by the escaped ID: no '/' reaches the
	// file system, no temp file is left.
	var want []string
	for _, id := range awkwardIDs {
		want = append(want, url.PathEscape(id)+".json")
	}
	sort.Strings(want)
	got := names(t, filepath.Join(dir, "pools"))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pools dir holds %q, want %q", got, want)
	}
	for _, n := range got {
		fi, err := os.Stat(filepath.Join(dir, "pools", n))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", n, fi.Mode().Perm())
		}
	}
	// Records are indented JSON a person can read.
	b, err := os.ReadFile(filepath.Join(dir, "pools", "cniprobe%2F10.99.0.0%2F24.json"))
	if err != nil {
		t.Fatalf("record of ID %q not at its escaped name: %v", "cniprobe/10.99.0.0/24", err)
	}
	if !strings.Contains(string(b), "\n  \"ID\": \"cniprobe/10.99.0.0/24\",\n") {
		t.Errorf("record file is not indented JSON:\n%s", b)
	}
}

func TestFileStoreSurvivesRestart(t *testing.T) {
	s, dir := openFile(t)
	for _, id := range awkwardIDs {
		if err := s.Pools.Put(id, pool(id)); err != nil {
			t.Fatal(err)
		}
	}
	ep := endpoint("cf5dd77156b0")
	if err := s.Endpoints.Put(ep.ID, ep); err != nil {
		t.Fatal(err)
	}
	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), awkwardIDs...)
	sort.Strings(want)
	if ids := poolIDs(t, s2.Pools); !reflect.DeepEqual(ids, want) {
		t.Errorf("after reopening, pools %q, want %q", ids, want)
	}
	got, err := s2.Endpoints.Get(ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, ep)
}

// TestFileStoreListSkipsTempFiles: a crash between create and rename leaves
// a temp file; List must neither fail on it nor return it.
func TestFileStoreListSkipsTempFiles(t *testing.T) {
	s, dir := openFile(t)
	if err := s.Pools.Put("p/1", pool("p/1")); err != nil {
		t.Fatal(err)
	}
	pools := filepath.Join(dir, "pools")
	for name, content := range map[string]string{
		".p%2F2.json.tmp123456": `{"ID": "p/2", "Subn`,
		".p%2F1.json.tmp987654": `{"ID": "p/1", "Subnet": "half-written`,
		"README":                "not a record",
	} {
		if err := os.WriteFile(filepath.Join(pools, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if ids := poolIDs(t, s.Pools); !reflect.DeepEqual(ids, []string{"p/1"}) {
		t.Errorf("List with temp files around = %q, want [p/1]", ids)
	}
	got, err := s.Pools.Get("p/1")
	if err != nil {
		t.Fatal(err)
	}
	same(t, got, pool("p/1"))
}

// TestFileStoreNoTempFilesLeft: neither a successful nor a failed write
// leaves a temp file behind.
func TestFileStoreNoTempFilesLeft(t *testing.T) {
	s, dir := openFile(t)
	pools := filepath.Join(dir, "pools")
	for i := 0; i < 5; i++ {
		if err := s.Pools.Put("p/1", pool("p/1")); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, pools); !reflect.DeepEqual(got, []string{"p%2F1.json"}) {
		t.Errorf("after five writes the pools dir holds %q", got)
	}
	// Make the rename fail: the record's name is taken by a non-empty
	// directory.
	blocked := filepath.Join(pools, "p%2F2.json")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.Pools.Put("p/2", pool("p/2")); err == nil {
		t.Fatal("Put over a directory succeeded")
	}
	if got := names(t, pools); !reflect.DeepEqual(got, []string{"p%2F1.json", "p%2F2.json"}) {
		t.Errorf("after a failed write the pools dir holds %q, want no temp file", got)
	}
	// And a value that cannot be encoded fails before touching the disk.
	ep := endpoint("e1")
	ep.Attachment.Capability = map[string]any{"bad": make(chan int)}
	if err := s.Endpoints.Put(ep.ID, ep); err == nil {
		t.Fatal("Put of an unencodable record succeeded")
	}
	if got := names(t, filepath.Join(dir, "endpoints")); len(got) != 0 {
		t.Errorf("after a failed encode the endpoints dir holds %q", got)
	}
}

func TestFileStoreCorruptRecord(t *testing.T) {
	s, dir := openFile(t)
	path := filepath.Join(dir, "pools", "p%2F1.json")
	if err := os.WriteFile(path, []byte(`{"ID": "p/1", "Subnet": `), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Pools.Get("p/1")
	if err == nil || errors.Is(err, state.ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Errorf("Get of a corrupt record: %v, want an error naming %s", err, path)
	}
	if _, err := s.Pools.List(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("List with a corrupt record: %v, want an error naming %s", err, path)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.json")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := state.WriteFileAtomic(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != content {
			t.Errorf("content %q, want %q", b, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if got := names(t, dir); !reflect.DeepEqual(got, []string{"rec.json"}) {
		t.Errorf("dir holds %q, want only rec.json", got)
	}
	if err := state.WriteFileAtomic(filepath.Join(dir, "missing", "rec.json"), []byte("x"), 0o600); err == nil {
		t.Error("WriteFileAtomic into a missing dir succeeded")
	}
}
