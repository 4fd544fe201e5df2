package ipamdriver_test

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

func TestAddressSpaces(t *testing.T) {
	e := newEnv(t)
	resp, err := e.ipam.GetDefaultAddressSpaces(e.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.LocalDefaultAddressSpace != "CniLocal" || resp.GlobalDefaultAddressSpace != "CniGlobal" {
		t.Errorf("address spaces = %+v", resp)
	}
	caps, err := e.ipam.GetCapabilities(e.ctx, nil)
	if err != nil || caps.RequiresMACAddress {
		t.Errorf("capabilities = %+v, %v; want no MAC address required", caps, err)
	}
}

func TestRequestPoolBound(t *testing.T) {
	t.Run("first range of the family", func(t *testing.T) {
		e := newEnv(t)
		path := e.writeConf("10-shared.conflist", sharedConflist)
		resp := e.requestPool(bound("shared"))
		if resp.Pool != "10.88.0.0/24" {
			t.Errorf("pool = %s, want the conflist's IPv4 range 10.88.0.0/24", resp.Pool)
		}
		if !strings.HasPrefix(resp.PoolID, "shared/10.88.0.0/24/") {
			t.Errorf("pool ID = %q, want it to name the CNI network and subnet", resp.PoolID)
		}
		p := e.pool(resp.PoolID)
		if !p.Bound || p.CNINetwork != "shared" || p.ConfFile != path || p.IPAMType != "host-local" || p.Gateway != "10.88.0.1" || p.NetworkID != "" {
			t.Errorf("stored pool = %+v", p)
		}
		// The reservations must land in the shared network's own store.
		conf := testutil.Decode(t, p.IPAMConf)
		if conf["name"] != "shared" {
			t.Errorf("IPAM conf name = %v, want shared (host-local's store is per network name)", conf["name"])
		}
		ipamSec := testutil.IPAMSection(t, p.IPAMConf)
		if ipamSec["dataDir"] != "/var/lib/cni/networks" {
			t.Errorf("IPAM conf dataDir = %v, want the conflist's", ipamSec["dataDir"])
		}
		if rs := ranges(t, p.IPAMConf); len(rs) != 1 || firstRange(t, p.IPAMConf)["subnet"] != "10.88.0.0/24" {
			t.Errorf("IPAM conf ranges = %v, want only 10.88.0.0/24", rs)
		}
	})

	t.Run("IPv6 pool", func(t *testing.T) {
		e := newEnv(t)
		e.writeConf("10-shared.conflist", sharedConflist)
		resp := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, V6: true, Options: map[string]string{translate.OptNetwork: "shared"}})
		if resp.Pool != "fd88::/64" {
			t.Errorf("pool = %s, want fd88::/64", resp.Pool)
		}
		if p := e.pool(resp.PoolID); !p.V6 || p.Gateway != "fd88::1" {
			t.Errorf("stored pool = %+v", p)
		}
	})

	t.Run("--subnet picks the range", func(t *testing.T) {
		e := newEnv(t)
		e.writeConf("10-two.conflist", `{"cniVersion": "1.0.0", "name": "two", "plugins": [
		  {"type": "bridge", "ipam": {"type": "host-local", "ranges": [
		    [{"subnet": "10.61.0.0/24"}], [{"subnet": "10.62.0.0/24", "gateway": "10.62.0.254"}]]}}]}`)
		req := bound("two")
		req.Pool = "10.62.0.0/24"
		resp := e.requestPool(req)
		if resp.Pool != "10.62.0.0/24" {
			t.Errorf("pool = %s, want 10.62.0.0/24", resp.Pool)
		}
		if p := e.pool(resp.PoolID); p.Gateway != "10.62.0.254" {
			t.Errorf("gateway = %s, want the range's 10.62.0.254", p.Gateway)
		}
	})

	refusals := []struct {
		name string
		req  func() *ipam.RequestPoolRequest
		want []string
	}{
		{"subnet not in the conflist", func() *ipam.RequestPoolRequest {
			r := bound("shared")
			r.Pool = "10.99.0.0/24"
			return r
		}, []string{`CNI network "shared" has no IPv4 range 10.99.0.0/24`, "10.88.0.0/24"}},
		{"--ip-range", func() *ipam.RequestPoolRequest {
			r := bound("shared")
			r.SubPool = "10.88.0.128/25"
			return r
		}, []string{"--ip-range cannot be used with cni.network=shared"}},
		{"unknown CNI network", func() *ipam.RequestPoolRequest { return bound("nope") },
			[]string{`CNI network "nope" not found in`, "(it has: shared, dhcp-net)"}},
		{"dhcp", func() *ipam.RequestPoolRequest { return bound("dhcp-net") },
			[]string{`CNI network "dhcp-net": IPAM plugin dhcp is not supported`, "renews the lease"}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeConf("10-shared.conflist", sharedConflist)
			e.writeConf("20-dhcp.conflist", `{"cniVersion": "1.0.0", "name": "dhcp-net", "plugins": [{"type": "macvlan", "ipam": {"type": "dhcp"}}]}`)
			_, err := e.ipam.RequestPool(e.ctx, tc.req())
			wantErr(t, err, tc.want...)
			if ps := e.pools(); len(ps) != 0 {
				t.Errorf("a refused request left pools: %+v", ps)
			}
		})
	}
}

func TestRequestPoolGenerated(t *testing.T) {
	t.Run("--subnet", func(t *testing.T) {
		e := newEnv(t, "10.200.0.0/16")
		resp := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.1.7/16"})
		if resp.Pool != "10.30.0.0/16" {
			t.Errorf("pool = %s, want the masked subnet 10.30.0.0/16", resp.Pool)
		}
		if !strings.HasPrefix(resp.PoolID, "docker-cni-10.30.0.0-16/") {
			t.Errorf("pool ID = %q", resp.PoolID)
		}
		p := e.pool(resp.PoolID)
		if p.Bound || p.CNINetwork != "docker-cni-10.30.0.0-16" || p.IPAMType != "host-local" || p.Gateway != "10.30.0.1" || p.Range != "" {
			t.Errorf("stored pool = %+v", p)
		}
		if ipamSec := testutil.IPAMSection(t, p.IPAMConf); ipamSec["dataDir"] != e.dataDir {
			t.Errorf("IPAM dataDir = %v, want the daemon's %s", ipamSec["dataDir"], e.dataDir)
		}
		r := firstRange(t, p.IPAMConf)
		if r["subnet"] != "10.30.0.0/16" || r["gateway"] != "10.30.0.1" {
			t.Errorf("IPAM range = %v", r)
		}
	})

	t.Run("--ip-range inside the subnet", func(t *testing.T) {
		e := newEnv(t)
		resp := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16", SubPool: "10.30.5.0/24"})
		if p := e.pool(resp.PoolID); p.Range != "10.30.5.0/24" {
			t.Errorf("range = %q", p.Range)
		}
		for i := 0; i < 3; i++ {
			got := netip.MustParsePrefix(e.address(resp.PoolID, ""))
			if got.Bits() != 16 || !netip.MustParsePrefix("10.30.5.0/24").Contains(got.Addr()) {
				t.Errorf("address %s: want one of --ip-range 10.30.5.0/24 with the subnet's /16", got)
			}
		}
	})

	t.Run("auto /24 skips taken subnets", func(t *testing.T) {
		e := newEnv(t, "10.200.0.0/16")
		e.writeConf("10-k8s.conflist", `{"cniVersion": "1.0.0", "name": "k8s", "plugins": [
		  {"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.200.0.0/24"}]]}}]}`)
		e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.200.1.0/24"})
		var got []string
		for i := 0; i < 2; i++ {
			got = append(got, e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace}).Pool)
		}
		if want := []string{"10.200.2.0/24", "10.200.3.0/24"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("auto pools = %v, want %v (10.200.0.0/24 is the conflist's, 10.200.1.0/24 a pool's)", got, want)
		}
	})

	t.Run("default pools exhausted", func(t *testing.T) {
		e := newEnv(t, "10.201.0.0/24")
		e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace})
		_, err := e.ipam.RequestPool(e.ctx, &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace})
		wantErr(t, err, "no free /24 left in the default pools [10.201.0.0/24]: give --subnet")
	})

	t.Run("IPv6 with --subnet", func(t *testing.T) {
		e := newEnv(t)
		resp := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "fd30::/64", V6: true})
		if p := e.pool(resp.PoolID); !p.V6 || p.Gateway != "fd30::1" || resp.Pool != "fd30::/64" {
			t.Errorf("pool = %+v", p)
		}
	})

	t.Run("overlap names the other pool and its network", func(t *testing.T) {
		e := newEnv(t)
		first := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.40.0.0/16"})
		_, err := e.ipam.RequestPool(e.ctx, &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.40.3.0/24"})
		wantErr(t, err, "subnet 10.40.3.0/24 overlaps 10.40.0.0/16 of docker-cni pool "+first.PoolID)

		p := e.pool(first.PoolID)
		p.NetworkID = "4f1c0a2b3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd"
		if err := e.st.PutPool(p); err != nil {
			t.Fatal(err)
		}
		_, err = e.ipam.RequestPool(e.ctx, &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.0.0.0/8"})
		wantErr(t, err, "subnet 10.0.0.0/8 overlaps 10.40.0.0/16 of docker-cni pool "+first.PoolID+" (Docker network 4f1c0a2b3d4e)")
		if n := len(e.pools()); n != 1 {
			t.Errorf("%d pools after refusals, want 1", n)
		}
	})

	refusals := []struct {
		name string
		req  *ipam.RequestPoolRequest
		want []string
	}{
		{"overlap with a conf-dir conflist", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.88.0.0/16"},
			[]string{`subnet 10.88.0.0/16 overlaps 10.88.0.0/24 of CNI network "shared"`, "10-shared.conflist", "to share it use --ipam-opt cni.network=shared"}},
		{"--ip-range outside the subnet", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16", SubPool: "10.31.0.0/24"},
			[]string{"--ip-range 10.31.0.0/24 is not inside subnet 10.30.0.0/16"}},
		{"--ip-range wider than the subnet", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16", SubPool: "10.0.0.0/8"},
			[]string{"--ip-range 10.0.0.0/8 is not inside subnet 10.30.0.0/16"}},
		{"IPv6 without --subnet", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, V6: true},
			[]string{"an IPv6 pool needs --subnet"}},
		{"IPv4 subnet for an IPv6 pool", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16", V6: true},
			[]string{"subnet 10.30.0.0/16 is not an IPv6 subnet"}},
		{"bad subnet", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/33"},
			[]string{`subnet "10.30.0.0/33"`}},
		{"unknown --ipam-opt", &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16", Options: map[string]string{"cni.nework": "shared"}},
			[]string{"--ipam-opt cni.nework is not supported (supported: cni.network)"}},
		{"global address space", &ipam.RequestPoolRequest{AddressSpace: cnm.GlobalSpace, Pool: "10.30.0.0/16"},
			[]string{"address space CniGlobal is not supported", "local-scope"}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "10.200.0.0/16")
			e.writeConf("10-shared.conflist", sharedConflist)
			_, err := e.ipam.RequestPool(e.ctx, tc.req)
			wantErr(t, err, tc.want...)
			if ps := e.pools(); len(ps) != 0 {
				t.Errorf("a refused request left pools: %+v", ps)
			}
			if calls := e.cni.Calls(); len(calls) != 0 {
				t.Errorf("a refused request ran CNI: %+v", calls)
			}
		})
	}
}

// TestIPRangeAtSubnetEdges: an --ip-range that starts at the subnet's first
// address or ends at its last must not hand out the subnet's network or
// broadcast address, as Docker's own IPAM never does.
func TestIPRangeAtSubnetEdges(t *testing.T) {
	cases := []struct{ subPool, forbidden string }{
		{"10.20.0.0/25", "10.20.0.0"},
		{"10.20.0.128/25", "10.20.0.255"},
	}
	for _, tc := range cases {
		t.Run(tc.subPool, func(t *testing.T) {
			e := newEnv(t)
			resp := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.20.0.0/24", SubPool: tc.subPool})
			for i := 0; i < 127; i++ {
				res, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: resp.PoolID})
				if err != nil {
					break
				}
				if netip.MustParsePrefix(res.Address).Addr().String() == tc.forbidden {
					t.Fatalf("container %d got %s, the subnet's network or broadcast address", i+1, res.Address)
				}
			}
			if _, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: resp.PoolID, Address: tc.forbidden}); err == nil {
				t.Errorf("--ip %s was granted", tc.forbidden)
			}
		})
	}
}

// TestRetryLoopGuard: without --subnet, Docker asks a bound network's pool
// again when the subnet is routed on the host; the second request must
// stop the loop with advice, until the first pool is claimed by a network.
func TestRetryLoopGuard(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-shared.conflist", sharedConflist)
	first := e.requestPool(bound("shared"))

	_, err := e.ipam.RequestPool(e.ctx, bound("shared"))
	wantErr(t, err, `CNI network "shared"'s subnet 10.88.0.0/24 is already routed on this host`, "--subnet 10.88.0.0/24")

	// The IPv6 pool of the same network is not a retry.
	e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, V6: true, Options: map[string]string{translate.OptNetwork: "shared"}})
	// Nor is a request with the subnet given.
	withSubnet := bound("shared")
	withSubnet.Pool = "10.88.0.0/24"
	explicit := e.requestPool(withSubnet)
	if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: explicit.PoolID}); err != nil {
		t.Fatal(err)
	}

	// CreateNetwork claims the first IPv4 pool (and the IPv6 one).
	d := driver.New(driver.Config{ConfDir: e.confDir, DataDir: e.dataDir},
		driver.Deps{Store: e.store, Pools: e.auth, CNI: e.cni, NS: testutil.NewNamespaces(), Log: testutil.Logger(t)})
	gw, err := e.gateway(first.PoolID, "")
	if err != nil {
		t.Fatal(err)
	}
	v6 := ""
	for _, p := range e.pools() {
		if p.V6 {
			v6 = p.Subnet
		}
	}
	_, err = d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{
		NetworkID: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
		Options:   map[string]any{},
		IPv4Data:  []*network.IPAMData{{AddressSpace: cnm.LocalSpace, Pool: first.Pool, Gateway: gw.Address}},
		IPv6Data:  []*network.IPAMData{{AddressSpace: cnm.LocalSpace, Pool: v6, Gateway: "fd88::1/64"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p := e.pool(first.PoolID); p.NetworkID == "" {
		t.Fatalf("CreateNetwork did not claim pool %s", first.PoolID)
	}
	// A second Docker network on the same CNI network is fine now.
	if _, err := e.ipam.RequestPool(e.ctx, bound("shared")); err != nil {
		t.Errorf("bound RequestPool after the first pool was claimed: %v", err)
	}
}

func TestReleasePool(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-shared.conflist", sharedConflist)
	pool := e.requestPool(bound("shared"))
	other := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16"})
	a1, a2 := e.address(pool.PoolID, ""), e.address(pool.PoolID, "")
	keep := e.address(other.PoolID, "")
	owners := map[string]bool{}
	for _, r := range e.reservations() {
		if r.PoolID == pool.PoolID {
			owners[r.OwnerID] = true
		}
	}
	e.cni.ResetCalls()

	// Docker did not release a1 and a2 (e.g. it was down): ReleasePool does.
	if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: pool.PoolID}); err != nil {
		t.Fatal(err)
	}
	dels := e.cni.Calls(testutil.OpPluginDel)
	if len(dels) != 2 {
		t.Fatalf("ReleasePool ran %d IPAM DELs, want 2 (for %s and %s)", len(dels), a1, a2)
	}
	for _, c := range dels {
		if !owners[c.Args.ContainerID] || c.Args.IfName != "eth0" || c.PluginType != "host-local" {
			t.Errorf("IPAM DEL %+v: want host-local with an owner of the pool's reservations %v", c.Args, owners)
		}
	}
	if left := e.cni.Reserved("shared"); len(left) != 0 {
		t.Errorf("addresses still reserved in the shared store: %v", left)
	}
	if _, err := e.st.Pool(pool.PoolID); err == nil {
		t.Error("pool still stored")
	}
	rs := e.reservations()
	if len(rs) != 1 || rs[0].PoolID != other.PoolID || rs[0].Address+"/16" != keep {
		t.Errorf("reservations left = %+v, want only %s of the other pool", rs, keep)
	}

	t.Run("unknown pool", func(t *testing.T) {
		if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: pool.PoolID}); err != nil {
			t.Errorf("second ReleasePool: %v", err)
		}
	})

	t.Run("IPAM DEL fails", func(t *testing.T) {
		e.cni.Fail(testutil.OpPluginDel, fmt.Errorf("host-local: lock: permission denied"))
		_, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: other.PoolID})
		wantErr(t, err, "release pool "+other.PoolID, "release "+strings.TrimSuffix(keep, "/16"), "permission denied")
		if _, err := e.st.Pool(other.PoolID); err != nil {
			t.Errorf("pool forgotten although its address could not be released: %v", err)
		}
		e.cni.Fail(testutil.OpPluginDel, nil)
		if _, err := e.ipam.ReleasePool(e.ctx, &ipam.ReleasePoolRequest{PoolID: other.PoolID}); err != nil {
			t.Errorf("retried ReleasePool: %v", err)
		}
		if n := len(e.reservations()) + len(e.pools()); n != 0 {
			t.Errorf("%d records left", n)
		}
	})
}
