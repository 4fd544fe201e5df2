package driver

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// fakeEngines answers NetworkChecker from a table; networks it does not
// list cannot be asked about. A network it has lists every endpoint
// docker-cni stored for it but those in dropped (containers removed while
// docker-cni was down).
type fakeEngines struct {
	mu      sync.Mutex
	live    map[string]engine.Liveness
	st      testutil.State
	dropped map[string]bool
	asked   []string
}

func (f *fakeEngines) NetworkEndpoints(ctx context.Context, id string) (engine.Liveness, map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, id)
	l, ok := f.live[id]
	if !ok {
		return engine.Unknown, nil, errors.New("ask unix:///var/run/docker.sock: connection refused")
	}
	eps := map[string]bool{}
	all, _ := f.st.Endpoints()
	for _, ep := range all {
		if ep.NetworkID == id && !f.dropped[ep.ID] {
			eps[ep.ID] = true
		}
	}
	return l, eps, nil
}

var _ NetworkChecker = (*fakeEngines)(nil)

// releaser records ReleasePool calls and passes them to the pool
// authority.
type releaser struct {
	*pools.Authority
	mu       sync.Mutex
	released []string
	fail     error
}

func (r *releaser) ReleasePool(ctx context.Context, id string) error {
	r.mu.Lock()
	r.released = append(r.released, id)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail
	}
	return r.Authority.ReleasePool(ctx, id)
}

// releaser makes the driver release pools through a releaser.
func (e *env) releaser() *releaser {
	r := &releaser{Authority: e.auth}
	e.d.pools = r
	return r
}

// later makes every record look age old to the driver and the authority.
func (e *env) later(age time.Duration) {
	now := func() time.Time { return time.Now().Add(age) }
	e.d.now = now
	e.auth.SetClock(now)
}

func TestReconcileGoneNetwork(t *testing.T) {
	e := newEnv(t)
	gone, alive, unknown := netID(1), netID(2), netID(3)
	e.mustCreateNetwork(gone, bound("shared"), generic(translate.OptJoin, "direct"))
	e.mustCreateNetwork(alive, subnet("10.30.0.0/24"), map[string]any{})
	e.mustCreateNetwork(unknown, subnet("10.31.0.0/24"), map[string]any{})
	e.createEndpoint(gone, epID(1), "a")
	e.createEndpoint(alive, epID(2), "b")
	e.createEndpoint(unknown, epID(3), "c")
	for i, nid := range []string{gone, alive, unknown} {
		e.mustJoin(nid, epID(i+1), e.sandbox(string(rune('a'+i))))
	}
	goneAdd := e.cni.Calls(testutil.OpAdd)[0]
	gonePool := e.network(gone).PoolIDs[0]
	aliveBridge := e.network(alive).BridgeName
	e.cni.ResetCalls()
	e.ns.ResetCalls()

	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{gone: engine.Gone, alive: engine.Alive}}
	rel := e.releaser()
	e.later(2 * time.Hour)
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}

	del := e.onlyCall(testutil.OpDel)
	wantSameRT(t, goneAdd.RT, del.RT)
	if _, err := e.st.Network(gone); err == nil {
		t.Error("gone network still stored")
	}
	if _, err := e.st.Endpoint(epID(1)); err == nil {
		t.Error("gone network's endpoint still stored")
	}
	if !slices.Equal(rel.released, []string{gonePool}) {
		t.Errorf("released pools = %v, want only %s", rel.released, gonePool)
	}
	if _, ok := e.cni.Reserved("shared")[netip.MustParseAddr("10.88.0.2")]; ok {
		t.Error("the gone network's address is still reserved in the shared IPAM store")
	}
	if rs, _ := e.st.Reservations(); len(rs) != 2 {
		t.Errorf("reservations left = %d, want the 2 of the live networks", len(rs))
	}
	for i, nid := range []string{alive, unknown} {
		if _, err := e.st.Network(nid); err != nil {
			t.Errorf("network %d removed: %v", i+2, err)
		}
		if e.endpoint(epID(i+2)).Attachment == nil {
			t.Errorf("endpoint %d detached", i+2)
		}
	}
	for _, c := range e.ns.Calls("DeleteHostLink") {
		if c.Args[0] == aliveBridge {
			t.Errorf("the live network's bridge %s was deleted", aliveBridge)
		}
	}
	if len(e.pools()) != 2 {
		t.Errorf("pools left = %d, want 2", len(e.pools()))
	}
}

func TestReconcileLeavesYoungRecords(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), bound("shared"), map[string]any{})
	e.createEndpoint(netID(1), epID(1), "a")
	e.mustJoin(netID(1), epID(1), e.sandbox("a"))
	// A pool whose network Docker is still creating.
	if _, err := e.ipam.RequestPool(e.ctx, subnet("10.30.0.0/24")); err != nil {
		t.Fatal(err)
	}
	e.cni.ResetCalls()
	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(1): engine.Gone}}
	rel := e.releaser()
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	if calls := e.cni.Calls(); len(calls) != 0 {
		t.Errorf("ran CNI: %+v", calls)
	}
	if len(rel.released) != 0 {
		t.Errorf("released %v", rel.released)
	}
	if _, err := e.st.Network(netID(1)); err != nil {
		t.Errorf("young network removed: %v", err)
	}
	if len(e.pools()) != 2 {
		t.Errorf("pools = %d, want 2", len(e.pools()))
	}
}

func TestReconcileStalePools(t *testing.T) {
	e := newEnv(t)
	// An unclaimed pool: `docker network create` failed after RequestPool
	// and Docker never released it.
	unclaimed, err := e.ipam.RequestPool(e.ctx, subnet("10.30.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: unclaimed.PoolID}); err != nil {
		t.Fatal(err)
	}
	// A pool whose network was deleted while ReleasePool was skipped.
	e.mustCreateNetwork(netID(1), subnet("10.31.0.0/24"), map[string]any{})
	orphan := e.network(netID(1)).PoolIDs[0]
	if err := e.st.DeleteNetwork(netID(1)); err != nil {
		t.Fatal(err)
	}
	// A live network's pool.
	e.mustCreateNetwork(netID(2), bound("shared"), map[string]any{})
	live := e.network(netID(2)).PoolIDs[0]

	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(2): engine.Alive}}
	rel := e.releaser()
	e.later(2 * time.Hour)
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	slices.Sort(rel.released)
	want := []string{unclaimed.PoolID, orphan}
	slices.Sort(want)
	if !slices.Equal(rel.released, want) {
		t.Errorf("released = %v, want %v", rel.released, want)
	}
	if ps := e.pools(); len(ps) != 1 || ps[0].ID != live {
		t.Errorf("pools left = %+v, want only %s", ps, live)
	}
	if left := e.cni.Reserved("docker-cni-10.30.0.0-24"); len(left) != 0 {
		t.Errorf("unclaimed pool's address still reserved: %v", left)
	}
}

func TestReconcileReportsReleaseFailures(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), bound("shared"), map[string]any{})
	pool := e.network(netID(1)).PoolIDs[0]
	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(1): engine.Gone}}
	rel := e.releaser()
	rel.fail = errors.New("state dir read-only")
	e.later(2 * time.Hour)
	err := e.d.Reconcile(e.ctx, engines, time.Hour)
	wantErr(t, err, "release pool "+pool+" of stale network a10001ffffff: state dir read-only")
	if _, err := e.st.Network(netID(1)); err == nil {
		t.Error("network still stored")
	}
	// The next pass retries the pool, now without a network.
	rel.fail = nil
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Errorf("second pass: %v", err)
	}
	if len(e.pools()) != 0 {
		t.Errorf("pools left: %+v", e.pools())
	}
}

// TestInterleavedBoundCreates: two `docker network create --ipam-driver cni
// --ipam-opt cni.network=shared --subnet 10.88.0.0/24` run at once (Docker
// locks only per network name): both RequestPools come before both
// CreateNetworks. Deleting the first network must never release the
// addresses of the second network's containers.
func TestInterleavedBoundCreates(t *testing.T) {
	e := newEnv(t)
	data1, p1, data2, p2 := twoSharedPools(t, e) // Docker's pools for networks 1 and 2
	for i, data := range []*network.IPAMData{data1, data2} {
		if _, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(i + 1), Options: map[string]any{}, IPv4Data: []*network.IPAMData{data}}); err != nil {
			t.Fatal(err)
		}
	}
	// A container on network 2: Docker reserves in its pool, p2.
	addr, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: p2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(2), EndpointID: epID(2),
		Interface: &network.EndpointInterface{Address: addr.Address}}); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(netID(2), epID(2), e.sandbox("c2"))

	// docker network rm network 1.
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: p1.ID}); err != nil {
		t.Fatal(err)
	}
	e.later(2 * time.Hour)
	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(2): engine.Alive}}
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParsePrefix(addr.Address).Addr()
	if _, ok := e.cni.Reserved("shared")[a]; !ok {
		t.Errorf("%s of a running container on network 2 was released from the shared IPAM store: the next pod or container can get it too", a)
	}
	if _, err := e.st.Reservation(p2 + "|" + a.String()); err != nil {
		t.Errorf("reservation of %s forgotten: %v", a, err)
	}
}

// TestClaimsCorrectedByEndpoint: when the networks are created in the
// opposite order to their pools, the first endpoint's address (reserved in
// the pool Docker really uses) swaps the claims, so deleting the other
// network and reconciling keeps this network's addresses.
func TestClaimsCorrectedByEndpoint(t *testing.T) {
	e := newEnv(t)
	data1, p1, data2, p2 := twoSharedPools(t, e)
	// Network 2 is created first: it claims p1, the oldest.
	for _, n := range []struct {
		i    int
		data *network.IPAMData
	}{{2, data2}, {1, data1}} {
		if _, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(n.i), Options: map[string]any{}, IPv4Data: []*network.IPAMData{n.data}}); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.network(netID(2)).PoolIDs[0]; got != p1.ID {
		t.Fatalf("setup: network 2 claimed %s, want %s", got, p1.ID)
	}
	addr, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: p2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(2), EndpointID: epID(2),
		Interface: &network.EndpointInterface{Address: addr.Address}}); err != nil {
		t.Fatal(err)
	}
	if got := e.network(netID(2)).PoolIDs[0]; got != p2 {
		t.Errorf("after its endpoint, network 2 claims %s, want %s", got, p2)
	}
	if got := e.network(netID(1)).PoolIDs[0]; got != p1.ID {
		t.Errorf("after the swap, network 1 claims %s, want %s", got, p1.ID)
	}
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: p1.ID}); err != nil {
		t.Fatal(err)
	}
	e.later(2 * time.Hour)
	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(2): engine.Alive}}
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	a := netip.MustParsePrefix(addr.Address).Addr()
	if _, ok := e.cni.Reserved("shared")[a]; !ok {
		t.Errorf("%s of network 2's container was released", a)
	}
}

// twoSharedPools requests two pools of the bound network "shared" on one
// subnet, the first a minute older, as two interleaved `docker network
// create` would.
func twoSharedPools(t *testing.T, e *env) (data1 *network.IPAMData, p1 *state.Pool, data2 *network.IPAMData, p2 string) {
	t.Helper()
	req := bound("shared")
	req.Pool = "10.88.0.0/24"
	data1 = e.cniPool(req)
	p1 = e.pools()[0]
	p1.Created = p1.Created.Add(-time.Minute)
	if err := e.st.PutPool(p1); err != nil {
		t.Fatal(err)
	}
	data2 = e.cniPool(req)
	for _, p := range e.pools() {
		if p.ID != p1.ID {
			p2 = p.ID
		}
	}
	return data1, p1, data2, p2
}
