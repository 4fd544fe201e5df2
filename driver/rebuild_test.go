package driver

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	dockernet "github.com/docker/docker/api/types/network"
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
)

// fakeCache is libcni's cache as the fake runner's ADDs would have left
// it, by container ID.
type fakeCache map[string]*libcni.NetworkAttachment

func (c fakeCache) Cached(containerID, network string) (*libcni.NetworkAttachment, json.RawMessage, error) {
	a := c[containerID]
	if a == nil || (network != "" && a.Network != network) {
		return nil, nil, nil
	}
	return a, nil, nil
}

// lose replaces e's state with an empty store (and, with wipe, the IPAM
// store too: the fake runner's), as a lost database leaves docker-cni,
// keeping the host (namespaces) as it is.
func (e *env) lose(wipe bool, cache AttachmentCache) {
	e.t.Helper()
	e.store = state.NewMemory()
	e.st = testutil.State{S: e.store}
	if wipe {
		e.cni = testutil.NewRunner(e.ns)
	}
	log := testutil.Logger(e.t)
	e.auth = pools.New(pools.Config{ConfDir: e.confDir, DataDir: e.dataDir, NetNS: "/run/docker-cni/ipam-netns"}, e.store, e.cni, log)
	e.ipam = ipamdriver.New(e.auth)
	e.d = New(Config{ConfDir: e.confDir, ScratchDir: e.scratchDir, DataDir: e.dataDir, K8sNamespace: k8sNamespace},
		Deps{Store: e.store, Pools: e.auth, CNI: e.cni, NS: e.ns, Log: log, Cache: cache})
}

// A generated network and a running container, then the state and the IPAM
// store lost: Rebuild from what the engine says makes the network as
// CreateNetwork did (the same conflist), reserves the container's address
// again, Docker's IPAM calls find the pool by the ID Docker kept, a new
// container gets another address, and the old one's Leave runs DEL with
// the conflist its ADD ran.
func TestRebuildGenerated(t *testing.T) {
	e := newEnv(t)
	pool, err := e.ipam.RequestPool(e.ctx, subnet("10.70.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	gw, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.70.0.254",
		Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}})
	if err != nil {
		t.Fatal(err)
	}
	opts := generic("cni.version", "1.0.0")
	if _, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(1), Options: opts,
		IPv4Data: []*network.IPAMData{{AddressSpace: "CniLocal", Pool: pool.Pool, Gateway: gw.Address}}}); err != nil {
		t.Fatal(err)
	}
	before := e.network(netID(1))
	addr := e.createEndpoint(netID(1), epID(1), "web")
	sb := e.sandbox("s1")
	e.mustJoin(netID(1), epID(1), sb)
	add := e.onlyCall(testutil.OpAdd)
	mac := e.endpoint(epID(1)).Attachment.MAC
	cache := fakeCache{epID(1): {ContainerID: epID(1), Network: before.CNINetwork, IfName: add.RT.IfName, NetNS: add.RT.NetNS, Config: add.Conf}}

	e.lose(true, cache)
	nf := engine.Network{ID: netID(1), Name: "appnet", Driver: "cni", IPAMDriver: "cni", Options: map[string]string{"cni.version": "1.0.0"},
		IPAM:      []dockernet.IPAMConfig{{Subnet: "10.70.0.0/24", Gateway: "10.70.0.254"}},
		Endpoints: []engine.Endpoint{{ID: epID(1), Name: "web", MAC: mac, Addresses: []string{addr}, SandboxKey: sb}}}
	n, err := e.d.Rebuild(e.ctx, []engine.Network{nf})
	if err != nil || n.Networks != 1 || n.Endpoints != 1 {
		t.Fatalf("Rebuild = %+v, %v; want 1 network, 1 endpoint", n, err)
	}
	after := e.network(netID(1))
	if string(after.Conflist) != string(before.Conflist) || after.CNINetwork != before.CNINetwork || !after.OwnsBridge {
		t.Errorf("rebuilt network:\n%s (%s, owns bridge %v)\nwant\n%s (%s)", after.Conflist, after.CNINetwork, after.OwnsBridge, before.Conflist, before.CNINetwork)
	}
	// Docker names the pool by the ID it kept.
	next, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID})
	if err != nil {
		t.Fatalf("RequestAddress in the pool Docker kept: %v", err)
	}
	if next.Address == addr || strings.HasPrefix(next.Address, "10.70.0.254/") {
		t.Errorf("a new container got %s; the old one holds %s, the gateway is 10.70.0.254", next.Address, addr)
	}
	if ps := e.pools(); len(ps) != 1 || ps[0].ID != pool.PoolID || ps[0].Provisional {
		t.Errorf("pools after the adoption: %+v; want the one pool under Docker's ID %s", ps, pool.PoolID)
	}
	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	del := e.onlyCall(testutil.OpDel)
	if string(del.Conf) != string(add.Conf) || del.RT.ContainerID != epID(1) {
		t.Errorf("DEL ran\n%s (container %s)\nwant what ADD ran\n%s", del.Conf, del.RT.ContainerID, add.Conf)
	}
	if _, err := e.ipam.ReleaseAddress(e.ctx, &ipam.ReleaseAddressRequest{PoolID: pool.PoolID, Address: strings.Split(addr, "/")[0]}); err != nil {
		t.Fatal(err)
	}
	if held := e.cni.Reserved(before.CNINetwork); len(held) != 1 {
		t.Errorf("after the old container's release the store holds %v; want only the new container's address", held)
	}
}

// A pool ID the state does not know, with no rebuilt pool to adopt and no
// rebuilder, is made again from what the ID says.
func TestPoolFromID(t *testing.T) {
	e := newEnv(t)
	id := "shared/10.88.0.0/24/0badf00d"
	res, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: id})
	if err != nil {
		t.Fatalf("RequestAddress in an unknown bound pool: %v", err)
	}
	if p := netip.MustParsePrefix(res.Address); !netip.MustParsePrefix("10.88.0.0/24").Contains(p.Addr()) {
		t.Errorf("address %s is not in the pool's subnet", res.Address)
	}
	if _, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: "not-a-pool-id"}); err == nil ||
		!strings.Contains(err.Error(), "not one docker-cni makes") {
		t.Errorf("an unreadable pool ID: %v", err)
	}
}

// Leave of an endpoint no record knows runs DEL as libcni's cache has it.
func TestLeaveUnknownFromCache(t *testing.T) {
	e := newEnv(t)
	list := []byte(`{"cniVersion":"1.0.0","name":"shared","plugins":[{"type":"bridge"}]}`)
	e.lose(false, fakeCache{epID(7): {ContainerID: epID(7), Network: "shared", IfName: "eth1", Config: list}})
	if err := e.leave(netID(7), epID(7)); err != nil {
		t.Fatal(err)
	}
	del := e.onlyCall(testutil.OpDel)
	if string(del.Conf) != string(list) || del.RT.IfName != "eth1" {
		t.Errorf("DEL of an unknown endpoint ran %s on %s; want the cached list on eth1", del.Conf, del.RT.IfName)
	}
}

// An engine may still list an endpoint it is deleting: a rebuild then must
// not make the record DeleteEndpoint just removed.
func TestRebuildSkipsDeletedEndpoint(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(2), subnet("10.71.0.0/24"), nil)
	addr := e.createEndpoint(netID(2), epID(2), "web")
	if _, err := e.d.DeleteEndpoint(e.ctx, &network.DeleteEndpointRequest{NetworkID: netID(2), EndpointID: epID(2)}); err != nil {
		t.Fatal(err)
	}
	nf := engine.Network{ID: netID(2), Driver: "cni", IPAMDriver: "cni", IPAM: []dockernet.IPAMConfig{{Subnet: "10.71.0.0/24"}},
		Endpoints: []engine.Endpoint{{ID: epID(2), Name: "web", Addresses: []string{addr}}}}
	n, err := e.d.Rebuild(e.ctx, []engine.Network{nf})
	if err != nil || n.Endpoints != 0 {
		t.Fatalf("Rebuild = %+v, %v; want no endpoint made again", n, err)
	}
	if _, err := e.st.Endpoint(epID(2)); err == nil {
		t.Error("the deleted endpoint has a record again")
	}
}
