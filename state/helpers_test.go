package state_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/state"
)

// stores are the two implementations; every behaviour must hold for both,
// since handler tests run against the memory store and the daemon against
// the database.
var stores = []struct {
	name string
	open func(t testing.TB) *state.Store
}{
	{"bbolt", func(t testing.TB) *state.Store {
		s, err := state.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
	{"memory", func(testing.TB) *state.Store { return state.NewMemory() }},
}

// forEachStore runs test against a fresh store of each kind.
func forEachStore(t *testing.T, test func(t *testing.T, s *state.Store)) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { test(t, st.open(t)) })
	}
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

func network(id string) *state.Network {
	return &state.Network{
		ID: id, CNINetwork: "k8s-pod-network", Bound: true, ConfFile: "/etc/cni/net.d/10-k8s.conflist", CNIVersion: "1.0.0",
		Conflist: json.RawMessage(`{"name":"k8s-pod-network","plugins":[{"type":"bridge"}]}`), PoolIDs: []string{"p/1", "p/2"},
		Gateways: []string{"10.99.0.1", "fd00:99::1"}, Internal: true, BridgeName: "cni-12c573030c", Created: created,
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
			Published:  json.RawMessage(`[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`),
			Added:      created,
		},
	}
}

func reservation(poolID, addr string) *state.Reservation {
	return &state.Reservation{
		PoolID: poolID, Address: addr, OwnerID: "docker-cni-ipam-1", IfName: "eth0", Name: "goofy_bose",
		Gateway: "10.99.0.1", Created: created,
	}
}

// same compares records as JSON values: RawMessage fields come back with
// their whitespace normalised, which is not a difference a reader sees.
func same(t testing.TB, got, want any) {
	t.Helper()
	if g, w := jsonValue(t, got), jsonValue(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("record differs\n got %v\nwant %v", g, w)
	}
}

func jsonValue(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// update runs fn in an Update that must succeed.
func update(t testing.TB, s *state.Store, fn func(*state.Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// view runs fn in a View that must succeed.
func view(t testing.TB, s *state.Store, fn func(*state.Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

// checkIndexes fails t unless every index is exact.
func checkIndexes(t testing.TB, s *state.Store) {
	t.Helper()
	if err := state.CheckIndexes(s); err != nil {
		t.Error(err)
	}
}

// dump returns every bucket of s.
func dump(t testing.TB, s *state.Store) map[string]map[string]string {
	t.Helper()
	d, err := state.Dump(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// ids returns the IDs (or keys) of records.
func ids[T any](recs []*T, id func(*T) string) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, id(r))
	}
	return out
}

func poolID(p *state.Pool) string                { return p.ID }
func networkID(n *state.Network) string          { return n.ID }
func endpointID(e *state.Endpoint) string        { return e.ID }
func reservationKey(r *state.Reservation) string { return r.Key }
