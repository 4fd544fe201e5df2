package driver

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

func TestCreateNetworkBound(t *testing.T) {
	e := newEnv(t)
	nid := netID(1)
	e.mustCreateNetwork(nid, bound("shared"), generic(translate.OptNetwork, "shared"))

	nw := e.network(nid)
	if !nw.Bound || nw.CNINetwork != "shared" || nw.ConfFile != e.confFile || nw.BridgeName != "" || nw.DockerIPAM {
		t.Errorf("stored network = %+v", nw)
	}
	if !reflect.DeepEqual(testutil.Decode(t, nw.Conflist), testutil.Decode(t, []byte(sharedConflist))) {
		t.Errorf("stored conflist differs from the conf dir's:\n%s", nw.Conflist)
	}
	if fmt.Sprint(nw.Gateways) != "[10.88.0.1]" {
		t.Errorf("gateways = %v", nw.Gateways)
	}
	ps := e.pools()
	if len(ps) != 1 || ps[0].NetworkID != nid || !slices.Equal(nw.PoolIDs, []string{ps[0].ID}) {
		t.Errorf("pools = %+v, network's = %v: want the one pool claimed", ps, nw.PoolIDs)
	}
	// Validation must not touch the shared IPAM store: static IPAM probes
	// the chain with the gateway.
	v := e.onlyCall(testutil.OpValidate)
	if addrs, _ := staticIPAM(t, v.Conf); addrs != "[map[address:10.88.0.1/32]]" {
		t.Errorf("Validate probed with %s", addrs)
	}
	if p := testutil.Plugin(t, v.Conf, "bridge"); p["bridge"] != "cni0" {
		t.Errorf("Validate ran a different chain: %s", v.Conf)
	}
}

// TestCreateNetworkClaimsOldestPool: CreateNetwork carries no pool ID, so
// of several unclaimed pools on one subnet it claims the oldest: Docker
// creates networks in the order it requested their pools.
func TestCreateNetworkClaimsOldestPool(t *testing.T) {
	e := newEnv(t)
	req := bound("shared")
	req.Pool = "10.88.0.0/24"
	data := e.cniPool(req)
	older := e.pools()[0]
	older.Created = older.Created.Add(-time.Hour)
	if err := e.st.PutPool(older); err != nil {
		t.Fatal(err)
	}
	e.cniPool(req)

	create := func(n int) error {
		_, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(n), Options: map[string]any{}, IPv4Data: []*network.IPAMData{data}})
		return err
	}
	if err := create(1); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.pools() {
		if want := map[bool]string{true: netID(1), false: ""}[p.ID == older.ID]; p.NetworkID != want {
			t.Errorf("pool %s (older: %v) claimed by %q, want %q", p.ID, p.ID == older.ID, p.NetworkID, want)
		}
	}
	if err := create(2); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.pools() {
		if p.ID != older.ID && p.NetworkID != netID(2) {
			t.Errorf("newer pool claimed by %q, want the second network", p.NetworkID)
		}
	}
	wantErr(t, create(3), "create network a10003ffffff: no unclaimed docker-cni pool for 10.88.0.0/24: was it requested from this daemon?")
}

func TestCreateNetworkMatchingBinding(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), bound("shared"), generic(translate.OptNetwork, "shared"))
	if nw := e.network(netID(1)); !nw.Bound {
		t.Errorf("network not bound: %+v", nw)
	}
}

func TestCreateNetworkRefusals(t *testing.T) {
	cases := []struct {
		name string
		// pool is asked of the cni IPAM driver; nil means Docker's IPAM
		// (the data sent is then docker).
		pool   *ipam.RequestPoolRequest
		docker []*network.IPAMData
		v6     []*network.IPAMData
		opts   map[string]any
		want   []string
	}{
		{name: "-o without --ipam-opt", pool: subnet("10.30.0.0/24"), opts: generic(translate.OptNetwork, "shared"),
			want: []string{"-o cni.network=shared needs --ipam-opt cni.network=shared as well"}},
		{name: "-o disagrees with --ipam-opt", pool: bound("shared"), opts: generic(translate.OptNetwork, "other"),
			want: []string{"-o cni.network=other disagrees with --ipam-opt cni.network=shared"}},
		{name: "binding with Docker's IPAM",
			docker: []*network.IPAMData{{AddressSpace: "LocalDefault", Pool: "10.30.0.0/24", Gateway: "10.30.0.1/24"}},
			opts:   generic(translate.OptNetwork, "shared"),
			want:   []string{`network bound to CNI network "shared" must use --ipam-driver cni --ipam-opt cni.network=shared`}},
		{name: "IPv6 from Docker's IPAM", pool: subnet("10.30.0.0/24"),
			v6:   []*network.IPAMData{{AddressSpace: "LocalDefault", Pool: "fd30::/64", Gateway: "fd30::1/64"}},
			want: []string{"the IPv4 and IPv6 pools must both come from the cni IPAM driver"}},
		{name: "bridge name with binding", pool: bound("shared"), opts: generic(cnm.OptBridgeName, "br-x"),
			want: []string{"-o com.docker.network.bridge.name cannot be used with cni.network=shared: the conflist names its bridge"}},
		{name: "MTU with binding", pool: bound("shared"), opts: generic(cnm.OptMTU, "1400"),
			want: []string{"-o com.docker.network.driver.mtu cannot be used with cni.network=shared: the conflist sets the MTU"}},
		{name: "--internal with binding", pool: bound("shared"), opts: map[string]any{cnm.OptInternal: true},
			want: []string{"--internal cannot be used with cni.network=shared"}},
		{name: "unknown -o", pool: subnet("10.30.0.0/24"), opts: generic("com.docker.network.bridge.enable_icc", "false"),
			want: []string{"option com.docker.network.bridge.enable_icc is not supported by the cni driver"}},
		{name: "version disagrees with the binding", pool: bound("shared"), opts: generic(translate.OptVersion, "0.4.0"),
			want: []string{`-o cni.version=0.4.0 disagrees with CNI network "shared" (cniVersion 1.0.0 in `, "give 1.0.0 or leave the option out"}},
		{name: "version that cannot chain", pool: subnet("10.30.0.0/24"), opts: generic(translate.OptVersion, "0.2.0"),
			want: []string{`option cni.version: "0.2.0" is not a CNI spec version that can chain plugins`}},
		{name: "bad MTU", pool: subnet("10.30.0.0/24"), opts: generic(cnm.OptMTU, "9"),
			want: []string{`option com.docker.network.driver.mtu: "9" is not an MTU`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			data := tc.docker
			if tc.pool != nil {
				data = []*network.IPAMData{e.cniPool(tc.pool)}
			}
			_, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(1), Options: tc.opts, IPv4Data: data, IPv6Data: tc.v6})
			wantErr(t, err, append([]string{"create network a10001ffffff: "}, tc.want...)...)
			if nws, _ := e.st.Networks(); len(nws) != 0 {
				t.Errorf("refused network stored: %+v", nws)
			}
			for _, p := range e.pools() {
				if p.NetworkID != "" {
					t.Errorf("refused network claimed pool %s; Docker's ReleasePool must still find it unclaimed", p.ID)
				}
			}
			if calls := e.cni.Calls(testutil.OpValidate); len(calls) != 0 {
				t.Errorf("refused network was validated: %d calls", len(calls))
			}
		})
	}
}

func TestCreateNetworkGenerated(t *testing.T) {
	t.Run("cni IPAM", func(t *testing.T) {
		e := newEnv(t)
		nid := netID(1)
		e.mustCreateNetwork(nid, subnet("10.30.0.0/24"), map[string]any{})
		nw := e.network(nid)
		if nw.Bound || nw.CNINetwork != "docker-cni-10.30.0.0-24" || nw.BridgeName != "cni-a10001ffff" || nw.DockerIPAM {
			t.Errorf("stored network = %+v", nw)
		}
		if got := testutil.PluginTypes(t, nw.Conflist); fmt.Sprint(got) != "[bridge]" {
			t.Errorf("plugins = %v", got)
		}
		br := testutil.Plugin(t, nw.Conflist, "bridge")
		if br["bridge"] != nw.BridgeName || br["ipMasq"] != false || br["isGateway"] != true {
			t.Errorf("bridge plugin = %v", br)
		}
		sec := testutil.IPAMSection(t, nw.Conflist)
		if sec["type"] != "host-local" || sec["dataDir"] != e.dataDir ||
			fmt.Sprint(sec["ranges"]) != "[[map[gateway:10.30.0.1 subnet:10.30.0.0/24]]]" || fmt.Sprint(sec["routes"]) != "[map[dst:0.0.0.0/0]]" {
			t.Errorf("ipam = %v", sec)
		}
	})

	t.Run("bridge name, MTU, internal", func(t *testing.T) {
		e := newEnv(t)
		opts := generic(cnm.OptBridgeName, "br-custom", cnm.OptMTU, "1400")
		opts[cnm.OptInternal] = true
		e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), opts)
		nw := e.network(netID(1))
		br := testutil.Plugin(t, nw.Conflist, "bridge")
		if nw.BridgeName != "br-custom" || br["bridge"] != "br-custom" || br["mtu"] != 1400.0 || br["ipMasq"] != false || !nw.Internal {
			t.Errorf("network = %+v, bridge plugin = %v", nw, br)
		}
		if routes, ok := testutil.IPAMSection(t, nw.Conflist)["routes"]; ok {
			t.Errorf("internal network has routes %v", routes)
		}
	})

	t.Run("--ip-range", func(t *testing.T) {
		e := newEnv(t)
		req := subnet("10.30.0.0/16")
		req.SubPool = "10.30.5.0/24"
		e.mustCreateNetwork(netID(1), req, map[string]any{})
		r := fmt.Sprint(testutil.IPAMSection(t, e.network(netID(1)).Conflist)["ranges"])
		if r != "[[map[gateway:10.30.0.1 rangeEnd:10.30.5.255 rangeStart:10.30.5.0 subnet:10.30.0.0/16]]]" {
			t.Errorf("ranges = %s", r)
		}
	})

	t.Run("custom gateway", func(t *testing.T) {
		e := newEnv(t)
		pool, err := e.ipam.RequestPool(e.ctx, subnet("10.30.0.0/24"))
		if err != nil {
			t.Fatal(err)
		}
		gw, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.30.0.254",
			Options: map[string]string{cnm.OptRequestAddressType: cnm.RequestAddressTypeGateway}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(1), Options: map[string]any{},
			IPv4Data: []*network.IPAMData{{AddressSpace: cnm.LocalSpace, Pool: pool.Pool, Gateway: gw.Address}}})
		if err != nil {
			t.Fatal(err)
		}
		nw := e.network(netID(1))
		if fmt.Sprint(nw.Gateways) != "[10.30.0.254]" || fmt.Sprint(testutil.IPAMSection(t, nw.Conflist)["ranges"]) != "[[map[gateway:10.30.0.254 subnet:10.30.0.0/24]]]" {
			t.Errorf("gateways %v, conflist %s", nw.Gateways, nw.Conflist)
		}
	})

	t.Run("Docker's IPAM", func(t *testing.T) {
		e := newEnv(t)
		_, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(1), Options: map[string]any{},
			IPv4Data: []*network.IPAMData{{AddressSpace: "LocalDefault", Pool: "10.31.0.0/24", Gateway: "10.31.0.1/24"}}})
		if err != nil {
			t.Fatal(err)
		}
		nw := e.network(netID(1))
		if !nw.DockerIPAM || len(nw.PoolIDs) != 0 || fmt.Sprint(nw.Gateways) != "[10.31.0.1]" || nw.CNINetwork != "docker-cni-10.31.0.0-24" {
			t.Errorf("stored network = %+v", nw)
		}
	})
}

func TestCreateNetworkBridgeClash(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(cnm.OptBridgeName, "br-apps"))
	err := e.createNetwork(netID(2), subnet("10.31.0.0/24"), generic(cnm.OptBridgeName, "br-apps"))
	wantErr(t, err, "create network a10002ffffff: bridge br-apps is already used by network a10001ffffff")
	if _, err := e.st.Network(netID(2)); err == nil {
		t.Error("clashing network stored")
	}
	// Default names differ per network.
	e.mustCreateNetwork(netID(3), subnet("10.32.0.0/24"), map[string]any{})
	e.mustCreateNetwork(netID(4), subnet("10.33.0.0/24"), map[string]any{})
	if a, b := e.network(netID(3)).BridgeName, e.network(netID(4)).BridgeName; a == b {
		t.Errorf("two networks share bridge %s", a)
	}
}

func TestCreateNetworkValidateFails(t *testing.T) {
	e := newEnv(t)
	e.cni.Fail(testutil.OpValidate, errors.New(`plugin "portmap" not found in /opt/cni/bin:/usr/lib/cni`))
	err := e.createNetwork(netID(1), bound("shared"), map[string]any{})
	wantErr(t, err, `create network a10001ffffff: CNI network "shared": plugin "portmap" not found in /opt/cni/bin:/usr/lib/cni`)
	if _, err := e.st.Network(netID(1)); err == nil {
		t.Error("network stored although its chain cannot run")
	}
	if p := e.pools()[0]; p.NetworkID != "" {
		t.Errorf("pool claimed by %s", p.NetworkID)
	}
}

func TestCreateEndpoint(t *testing.T) {
	e := newEnv(t)
	gen, bnd := netID(1), netID(2)
	e.mustCreateNetwork(gen, subnet("10.30.0.0/24"), map[string]any{})
	e.mustCreateNetwork(bnd, bound("shared"), map[string]any{})

	t.Run("generated network chooses the MAC", func(t *testing.T) {
		addr, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: e.network(gen).PoolIDs[0],
			Options: map[string]string{cnm.OptEndpointName: "web"}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: gen, EndpointID: epID(1),
			Interface: &network.EndpointInterface{Address: addr.Address}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Interface == nil {
			t.Fatal("no MAC address in the response: docker inspect would not show the container's")
		}
		mac, err := net.ParseMAC(resp.Interface.MacAddress)
		if err != nil || mac[0]&3 != 2 {
			t.Errorf("MAC %q: want a locally administered unicast address (%v)", resp.Interface.MacAddress, err)
		}
		ep := e.endpoint(epID(1))
		if ep.MAC != resp.Interface.MacAddress || ep.Name != "web" || fmt.Sprint(ep.Addresses) != "["+addr.Address+"]" || ep.NetworkID != gen {
			t.Errorf("stored endpoint = %+v", ep)
		}
	})

	t.Run("Docker's MAC is kept", func(t *testing.T) {
		resp, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: gen, EndpointID: epID(2),
			Interface: &network.EndpointInterface{Address: "10.30.0.9/24", MacAddress: "02:42:0a:1e:00:09"}})
		if err != nil || resp.Interface != nil {
			t.Fatalf("CreateEndpoint = %+v, %v; want no interface in the response", resp, err)
		}
		if ep := e.endpoint(epID(2)); ep.MAC != "02:42:0a:1e:00:09" {
			t.Errorf("MAC = %q", ep.MAC)
		}
	})

	t.Run("bound network without mac capability", func(t *testing.T) {
		resp, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: bnd, EndpointID: epID(3),
			Interface: &network.EndpointInterface{Address: "10.88.0.9/24", AddressIPv6: "fd88::9/64"}})
		if err != nil || resp.Interface != nil {
			t.Fatalf("CreateEndpoint = %+v, %v", resp, err)
		}
		if ep := e.endpoint(epID(3)); ep.MAC != "" || fmt.Sprint(ep.Addresses) != "[10.88.0.9/24 fd88::9/64]" {
			t.Errorf("stored endpoint = %+v", ep)
		}
	})

	for _, iface := range []*network.EndpointInterface{nil, {}, {MacAddress: "02:42:0a:1e:00:0a"}} {
		t.Run(fmt.Sprintf("no address %+v", iface), func(t *testing.T) {
			_, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: gen, EndpointID: epID(4), Interface: iface})
			wantErr(t, err, "create endpoint e10004ffffff: no address from IPAM")
			if _, err := e.st.Endpoint(epID(4)); err == nil {
				t.Error("endpoint stored")
			}
		})
	}

	t.Run("unknown network", func(t *testing.T) {
		_, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(9), EndpointID: epID(5),
			Interface: &network.EndpointInterface{Address: "10.30.0.5/24"}})
		wantErr(t, err, "create endpoint e10005ffffff: network a10009ffffff", "not found")
	})
}

func TestDeleteNetwork(t *testing.T) {
	e := newEnv(t)
	nid := netID(1)
	e.mustCreateNetwork(nid, subnet("10.30.0.0/24"), generic(translate.OptJoin, "direct"))
	e.createEndpoint(nid, epID(1), "joined")
	e.createEndpoint(nid, epID(2), "created")
	sbox := e.sandbox("c1")
	e.mustJoin(nid, epID(1), sbox)
	add := e.onlyCall(testutil.OpAdd)
	bridge := e.network(nid).BridgeName
	e.cni.ResetCalls()
	e.ns.ResetCalls()

	// Docker skipped Leave and DeleteEndpoint (e.g. the daemon was down).
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: nid}); err != nil {
		t.Fatal(err)
	}
	del := e.onlyCall(testutil.OpDel)
	wantSameRT(t, add.RT, del.RT)
	if string(del.Conf) != string(add.Conf) {
		t.Errorf("DEL conflist differs from ADD's")
	}
	if eps, _ := e.st.Endpoints(); len(eps) != 0 {
		t.Errorf("endpoints left: %+v", eps)
	}
	if _, err := e.st.Network(nid); err == nil {
		t.Error("network still stored")
	}
	if calls := e.ns.Calls("DeleteHostLink"); !slices.ContainsFunc(calls, func(c testutil.NSCall) bool { return c.Args[0] == bridge }) {
		t.Errorf("bridge %s not deleted; DeleteHostLink calls: %v", bridge, calls)
	}
	if _, ok := e.ns.Link(sbox, add.RT.IfName); ok {
		t.Errorf("%s still in the sandbox", add.RT.IfName)
	}

	e.cni.ResetCalls()
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: nid}); err != nil {
		t.Errorf("second DeleteNetwork: %v", err)
	}
	if calls := e.cni.Calls(); len(calls) != 0 {
		t.Errorf("second DeleteNetwork ran CNI: %+v", calls)
	}

	t.Run("bound network keeps the shared bridge", func(t *testing.T) {
		e.mustCreateNetwork(netID(2), bound("shared"), map[string]any{})
		e.ns.ResetCalls()
		if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(2)}); err != nil {
			t.Fatal(err)
		}
		for _, c := range e.ns.Calls("DeleteHostLink") {
			if c.Args[0] == "cni0" {
				t.Error("deleting a bound network deleted the conflist's bridge cni0, which other runtimes use")
			}
		}
	})
}

// TestDeleteNetworkKeepsBridgesItDidNotMake: -o bridge.name may name a
// bridge that exists already (dockerd's docker0, or cni0 of a conf-dir
// conflist that pods use); `docker network rm` must leave it, as Docker's
// bridge driver leaves a bridge it did not create.
func TestDeleteNetworkKeepsBridgesItDidNotMake(t *testing.T) {
	for _, br := range []string{"docker0", "cni0"} {
		t.Run(br, func(t *testing.T) {
			e := newEnv(t)
			e.ns.AddNetNS(testutil.HostNetNS, testutil.Link{Name: "docker0"}, testutil.Link{Name: "cni0"})
			if err := e.createNetwork(netID(1), subnet("10.30.0.0/24"), generic(cnm.OptBridgeName, br)); err != nil {
				return // refusing the name is fine too
			}
			if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(1)}); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.ns.Link(testutil.HostNetNS, br); !ok {
				t.Errorf("docker network rm deleted the host's %s, which docker-cni did not create", br)
			}
		})
	}
}

// TestCreateNetworkVersion: -o cni.version picks a generated conflist's
// version and must match a bound one's, so docker network inspect, which
// shows it, tells the truth.
func TestCreateNetworkVersion(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(translate.OptVersion, "0.4.0"))
	nw := e.network(netID(1))
	if nw.CNIVersion != "0.4.0" || testutil.Decode(t, nw.Conflist)["cniVersion"] != "0.4.0" {
		t.Errorf("generated network version %s, conflist %s", nw.CNIVersion, nw.Conflist)
	}
	if v := testutil.Decode(t, e.onlyCall(testutil.OpValidate).Conf)["cniVersion"]; v != "0.4.0" {
		t.Errorf("validated the chain at version %v", v)
	}
	if nw.VersionOption != "0.4.0" {
		t.Errorf("generated network's -o cni.version recorded as %q", nw.VersionOption)
	}
	e.mustCreateNetwork(netID(2), bound("shared"), generic(translate.OptNetwork, "shared", translate.OptVersion, "1.0.0"))
	if nw := e.network(netID(2)); nw.CNIVersion != "1.0.0" || nw.VersionOption != "1.0.0" {
		t.Errorf("bound network version %s, option %q", nw.CNIVersion, nw.VersionOption)
	}
	e.mustCreateNetwork(netID(3), subnet("10.31.0.0/24"), map[string]any{})
	if nw := e.network(netID(3)); nw.CNIVersion != translate.DefaultCNIVersion || nw.VersionOption != "" ||
		testutil.Decode(t, nw.Conflist)["cniVersion"] != translate.DefaultCNIVersion {
		t.Errorf("default version %s, option %q, conflist %s", nw.CNIVersion, nw.VersionOption, nw.Conflist)
	}
}

// TestCreateNetworkVersionUnsupported: a plugin of the chain that does not
// support the network's CNI version fails CreateNetwork, naming the plugin:
// for a generated network the -o cni.version that picked it, for a bound
// one the conflist's own declaration.
func TestCreateNetworkVersionUnsupported(t *testing.T) {
	cases := []struct {
		name   string
		pool   *ipam.RequestPoolRequest
		opts   map[string]any
		plugin string
		want   string
	}{
		{name: "generated chain's bridge", pool: subnet("10.30.0.0/24"), opts: generic(translate.OptVersion, "0.3.1"), plugin: "bridge",
			want: `create network a10001ffffff: -o cni.version=0.3.1 cannot run the generated chain: CNI network "docker-cni-10.30.0.0-24": ` +
				"plugin bridge (/fake/bin/bridge) does not support CNI version 0.3.1 (it supports 0.4.0, 1.0.0)"},
		{name: "bound conflist's own version", pool: bound("shared"), opts: map[string]any{}, plugin: "portmap",
			want: `create network a10001ffffff: CNI network "shared": plugin portmap (/fake/bin/portmap) does not support CNI version 1.0.0 (it supports 0.4.0)`},
		{name: "bound, the option agreeing", pool: bound("shared"), opts: generic(translate.OptVersion, "1.0.0"), plugin: "portmap",
			want: `create network a10001ffffff: CNI network "shared": plugin portmap (/fake/bin/portmap) does not support CNI version 1.0.0 (it supports 0.4.0)`},
		// Validation runs the chain as Join will: with static IPAM.
		{name: "delegated IPAM plugin", pool: subnet("10.30.0.0/24"), opts: generic(translate.OptVersion, "1.0.0"), plugin: "static",
			want: `create network a10001ffffff: -o cni.version=1.0.0 cannot run the generated chain: CNI network "docker-cni-10.30.0.0-24": ` +
				"plugin static (/fake/bin/static) does not support CNI version 1.0.0 (it supports 0.4.0)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.plugin == "bridge" {
				e.cni.SetVersions("bridge", "0.4.0", "1.0.0")
			} else {
				e.cni.SetVersions(tc.plugin, "0.4.0")
			}
			err := e.createNetwork(netID(1), tc.pool, tc.opts)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("CreateNetwork: %v\nwant %s", err, tc.want)
			}
			if nws, _ := e.st.Networks(); len(nws) != 0 {
				t.Errorf("refused network stored: %+v", nws)
			}
			if p := e.pools()[0]; p.NetworkID != "" {
				t.Errorf("pool claimed by %s", p.NetworkID)
			}
		})
	}
	// The versions the plugins support are accepted.
	e := newEnv(t)
	e.cni.SetVersions("bridge", "0.4.0", "1.0.0")
	e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(translate.OptVersion, "0.4.0"))
}
