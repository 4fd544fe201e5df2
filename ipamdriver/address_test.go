package ipamdriver_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/ipam"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
)

func TestGatewayRequest(t *testing.T) {
	t.Run("bound: the range's gateway", func(t *testing.T) {
		e := newEnv(t)
		e.writeConf("10-shared.conflist", sharedConflist)
		pool := e.requestPool(bound("shared"))
		for _, want := range []string{"", "10.88.0.1"} {
			resp, err := e.gateway(pool.PoolID, want)
			if err != nil {
				t.Fatalf("gateway %q: %v", want, err)
			}
			if resp.Address != "10.88.0.1/24" {
				t.Errorf("gateway %q = %s, want 10.88.0.1/24", want, resp.Address)
			}
		}
		if calls := e.cni.Calls(); len(calls) != 0 {
			t.Errorf("the gateway request ran CNI: %+v (the gateway is not a container's address)", calls)
		}
	})

	t.Run("bound: another --gateway is refused", func(t *testing.T) {
		e := newEnv(t)
		e.writeConf("10-shared.conflist", sharedConflist)
		pool := e.requestPool(bound("shared"))
		_, err := e.gateway(pool.PoolID, "10.88.0.254")
		wantErr(t, err, `--gateway 10.88.0.254 disagrees with CNI network "shared", whose gateway for 10.88.0.0/24 is 10.88.0.1`)
		if p := e.pool(pool.PoolID); p.Gateway != "10.88.0.1" {
			t.Errorf("pool gateway changed to %s", p.Gateway)
		}
	})

	t.Run("generated: default gateway", func(t *testing.T) {
		e := newEnv(t)
		pool := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/16"})
		resp, err := e.gateway(pool.PoolID, "")
		if err != nil || resp.Address != "10.30.0.1/16" {
			t.Fatalf("gateway = %+v, %v; want 10.30.0.1/16", resp, err)
		}
		if got := e.address(pool.PoolID, ""); got != "10.30.0.2/16" {
			t.Errorf("first container address = %s, want 10.30.0.2/16", got)
		}
	})

	t.Run("generated: custom gateway reaches the IPAM plugin", func(t *testing.T) {
		e := newEnv(t)
		pool := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/24"})
		resp, err := e.gateway(pool.PoolID, "10.30.0.254")
		if err != nil || resp.Address != "10.30.0.254/24" {
			t.Fatalf("gateway = %+v, %v; want 10.30.0.254/24", resp, err)
		}
		if p := e.pool(pool.PoolID); p.Gateway != "10.30.0.254" {
			t.Errorf("stored gateway = %s", p.Gateway)
		}
		// With the gateway moved, .1 is a container's address.
		if got := e.address(pool.PoolID, ""); got != "10.30.0.1/24" {
			t.Errorf("first container address = %s, want 10.30.0.1/24", got)
		}
		adds := e.cni.Calls(testutil.OpPluginAdd)
		if r := firstRange(t, adds[0].Conf); r["gateway"] != "10.30.0.254" {
			t.Errorf("IPAM plugin ran with range %v, want gateway 10.30.0.254", r)
		}
		if _, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.30.0.254"}); err == nil {
			t.Error("--ip equal to the custom gateway was granted")
		}
	})

	t.Run("gateway outside the subnet", func(t *testing.T) {
		e := newEnv(t)
		pool := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/24"})
		_, err := e.gateway(pool.PoolID, "10.31.0.1")
		wantErr(t, err, "address 10.31.0.1 is not in subnet 10.30.0.0/24")
	})
}

func TestRequestAddress(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-shared.conflist", sharedConflist)
	pool := e.requestPool(bound("shared"))

	resp, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID,
		Options: map[string]string{cnm.OptEndpointName: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Address != "10.88.0.2/24" {
		t.Errorf("address = %s, want 10.88.0.2/24 (the first after the gateway)", resp.Address)
	}
	adds := e.cni.Calls(testutil.OpPluginAdd)
	if len(adds) != 1 {
		t.Fatalf("%d IPAM ADDs, want 1", len(adds))
	}
	c := adds[0]
	if c.PluginType != "host-local" || c.Args.IfName != "eth0" || c.Args.NetNS != ipamNetNS || !strings.HasPrefix(c.Args.ContainerID, "docker-") {
		t.Errorf("IPAM ADD = %s %+v", c.PluginType, c.Args)
	}
	r, err := e.st.Reservation(pool.PoolID + "|10.88.0.2")
	if err != nil {
		t.Fatalf("no reservation recorded: %v", err)
	}
	if r.OwnerID != c.Args.ContainerID || r.IfName != "eth0" || r.Name != "web" || r.Address != "10.88.0.2" {
		t.Errorf("reservation = %+v", r)
	}
	if o := e.cni.Reserved("shared")[netip.MustParseAddr("10.88.0.2")]; o.ContainerID != r.OwnerID {
		t.Errorf("host-local store owner = %+v, want %s", o, r.OwnerID)
	}

	t.Run("owners are unique", func(t *testing.T) {
		got := e.address(pool.PoolID, "")
		if got != "10.88.0.3/24" {
			t.Errorf("second address = %s, want 10.88.0.3/24", got)
		}
		owners := map[string]bool{}
		for _, r := range e.reservations() {
			if owners[r.OwnerID] {
				t.Errorf("owner %s used twice", r.OwnerID)
			}
			owners[r.OwnerID] = true
		}
	})

	t.Run("address taken by another runtime", func(t *testing.T) {
		// kubelet's runtime allocated 10.88.0.4 from the same conflist.
		other := []byte(`{"cniVersion": "1.0.0", "name": "shared", "type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.88.0.0/24"}]]}}`)
		if _, err := e.cni.PluginAdd(e.ctx, "host-local", other, cnirun.PluginArgs{ContainerID: "k8s-pod", IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
		if got := e.address(pool.PoolID, ""); got != "10.88.0.5/24" {
			t.Errorf("address = %s, want 10.88.0.5/24 (10.88.0.4 is the pod's)", got)
		}
		_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.88.0.4"})
		wantErr(t, err, `reserve 10.88.0.4 in CNI network "shared"`, "not available")
	})

	t.Run("--ip", func(t *testing.T) {
		e.cni.ResetCalls()
		if got := e.address(pool.PoolID, "10.88.0.50"); got != "10.88.0.50/24" {
			t.Errorf("address = %s, want 10.88.0.50/24", got)
		}
		conf := testutil.Decode(t, e.cni.Calls(testutil.OpPluginAdd)[0].Conf)
		if ips := fmt.Sprint(conf["args"]); ips != "map[cni:map[ips:[10.88.0.50]]]" {
			t.Errorf("IPAM ADD args = %s, want args.cni.ips [10.88.0.50]", ips)
		}
	})

	refusals := []struct {
		name, address string
		want          []string
	}{
		{"--ip outside the subnet", "10.99.0.5", []string{"address 10.99.0.5 is not in subnet 10.88.0.0/24"}},
		{"--ip is the gateway", "10.88.0.1", []string{"address 10.88.0.1 is the gateway of subnet 10.88.0.0/24"}},
		{"--ip not an address", "10.88.0.x", []string{`address "10.88.0.x"`}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e.cni.ResetCalls()
			_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: tc.address})
			wantErr(t, err, tc.want...)
			if calls := e.cni.Calls(); len(calls) != 0 {
				t.Errorf("refused request ran CNI: %+v", calls)
			}
		})
	}

	t.Run("unknown pool", func(t *testing.T) {
		_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: "shared/10.77.0.0/24/00000000"})
		wantErr(t, err, "pool shared/10.77.0.0/24/00000000 is unknown to docker-cni")
	})
}

func TestRequestAddressPluginFails(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-shared.conflist", sharedConflist)
	pool := e.requestPool(bound("shared"))
	e.cni.FailNext(testutil.OpPluginAdd, errors.New(`plugin "host-local" not found in /opt/cni/bin`))
	_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID})
	wantErr(t, err, `reserve an address in CNI network "shared": plugin "host-local" not found in /opt/cni/bin`)
	e.cni.FailNext(testutil.OpPluginAdd, errors.New("host-local: no IP addresses available"))
	_, err = e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: "10.88.0.9"})
	wantErr(t, err, `reserve 10.88.0.9 in CNI network "shared": host-local: no IP addresses available`)
	if rs := e.reservations(); len(rs) != 0 {
		t.Errorf("failed requests left reservations: %+v", rs)
	}
}

// TestRequestAddressUnexpectedResult: an IPAM plugin answering an address
// outside the pool must not leak the reservation it made.
func TestRequestAddressUnexpectedResult(t *testing.T) {
	cases := []struct {
		name, address string
		result        string
		want          string
	}{
		{"outside the subnet", "", "192.0.2.7/24", `CNI network "shared": IPAM plugin host-local returned no address in 10.88.0.0/24`},
		{"not the requested address", "10.88.0.20", "10.88.0.21/24", `CNI network "shared": IPAM plugin host-local reserved 10.88.0.21, not the requested 10.88.0.20`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeConf("10-shared.conflist", sharedConflist)
			pool := e.requestPool(bound("shared"))
			ip, ipn, _ := net.ParseCIDR(tc.result)
			e.cni.SetResult(testutil.OpPluginAdd, &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{{Address: net.IPNet{IP: ip, Mask: ipn.Mask}}}})
			_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Address: tc.address})
			wantErr(t, err, tc.want, strings.Split(tc.result, "/")[0])
			add := e.cni.Calls(testutil.OpPluginAdd)[0]
			dels := e.cni.Calls(testutil.OpPluginDel)
			if len(dels) != 1 || dels[0].Args.ContainerID != add.Args.ContainerID || dels[0].Args.IfName != add.Args.IfName {
				t.Errorf("IPAM DELs = %+v, want one with the ADD's owner %+v", dels, add.Args)
			}
			if left := e.cni.Reserved("shared"); len(left) != 0 {
				t.Errorf("leaked reservation in the IPAM store: %v", left)
			}
			if rs := e.reservations(); len(rs) != 0 {
				t.Errorf("reservation recorded: %+v", rs)
			}
		})
	}
}

func TestReleaseAddress(t *testing.T) {
	e := newEnv(t)
	e.writeConf("10-shared.conflist", sharedConflist)
	pool := e.requestPool(bound("shared"))
	addr := e.address(pool.PoolID, "")
	e.address(pool.PoolID, "")
	r, err := e.st.Reservation(pool.PoolID + "|10.88.0.2")
	if err != nil {
		t.Fatal(err)
	}
	e.cni.ResetCalls()

	release := func(a string) error {
		_, err := e.ipam.ReleaseAddress(e.ctx, &ipam.ReleaseAddressRequest{PoolID: pool.PoolID, Address: a})
		return err
	}

	t.Run("IPAM DEL fails", func(t *testing.T) {
		e.cni.FailNext(testutil.OpPluginDel, errors.New("host-local: lock timeout"))
		wantErr(t, release("10.88.0.2"), `release 10.88.0.2 in CNI network "shared": host-local: lock timeout`)
		if _, err := e.st.Reservation(r.Key); err != nil {
			t.Errorf("reservation forgotten although the address was not released: %v", err)
		}
	})

	t.Run("released with its owner", func(t *testing.T) {
		e.cni.ResetCalls()
		if err := release("10.88.0.2"); err != nil {
			t.Fatalf("release %s: %v", addr, err)
		}
		dels := e.cni.Calls(testutil.OpPluginDel)
		want := cnirun.PluginArgs{ContainerID: r.OwnerID, IfName: "eth0", NetNS: ipamNetNS}
		if len(dels) != 1 || !reflect.DeepEqual(dels[0].Args, want) || dels[0].PluginType != "host-local" {
			t.Errorf("IPAM DELs = %+v, want one host-local DEL with %+v", dels, want)
		}
		if _, ok := e.cni.Reserved("shared")[netip.MustParseAddr("10.88.0.2")]; ok {
			t.Error("10.88.0.2 still reserved in the IPAM store")
		}
		if _, ok := e.cni.Reserved("shared")[netip.MustParseAddr("10.88.0.3")]; !ok {
			t.Error("10.88.0.3 was released too")
		}
		if _, err := e.st.Reservation(r.Key); err == nil {
			t.Error("reservation still recorded")
		}
	})

	noops := []struct{ name, pool, address string }{
		{"again", pool.PoolID, "10.88.0.2"},
		{"gateway", pool.PoolID, "10.88.0.1"},
		{"unknown address", pool.PoolID, "10.88.0.77"},
		{"unknown pool", "shared/10.77.0.0/24/00000000", "10.77.0.2"},
	}
	for _, tc := range noops {
		t.Run(tc.name, func(t *testing.T) {
			e.cni.ResetCalls()
			if _, err := e.ipam.ReleaseAddress(e.ctx, &ipam.ReleaseAddressRequest{PoolID: tc.pool, Address: tc.address}); err != nil {
				t.Errorf("ReleaseAddress(%s): %v", tc.address, err)
			}
			if calls := e.cni.Calls(); len(calls) != 0 {
				t.Errorf("ran CNI: %+v", calls)
			}
		})
	}
}

// TestRequestAddressConcurrent: Docker may ask for addresses of one pool
// from several goroutines; each gets its own address and owner.
func TestRequestAddressConcurrent(t *testing.T) {
	e := newEnv(t)
	pool := e.requestPool(&ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: "10.30.0.0/24"})
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	seen := map[string]bool{}
	for _, r := range e.reservations() {
		if seen[r.Address] {
			t.Errorf("%s reserved twice", r.Address)
		}
		seen[r.Address] = true
	}
	if len(seen) != n || len(e.cni.Reserved(e.pool(pool.PoolID).CNINetwork)) != n {
		t.Errorf("%d reservations recorded, %d in the IPAM store; want %d", len(seen), len(e.cni.Reserved(e.pool(pool.PoolID).CNINetwork)), n)
	}
}
