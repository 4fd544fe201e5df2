package driver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

// boundEndpoint makes network 1 bound to the shared conflist and endpoint 1
// on it for a container named web; it returns the endpoint's address.
func (e *env) boundEndpoint() string {
	e.t.Helper()
	e.mustCreateNetwork(netID(1), bound("shared"), map[string]any{})
	return e.createEndpoint(netID(1), epID(1), "web")
}

// directEndpoint is boundEndpoint on a network made with -o cni.join=direct.
func (e *env) directEndpoint() string {
	e.t.Helper()
	e.mustCreateNetwork(netID(1), bound("shared"), generic(translate.OptJoin, "direct"))
	return e.createEndpoint(netID(1), epID(1), "web")
}

func hasArg(args [][2]string, k, v string) bool {
	return slices.Contains(args, [2]string{k, v})
}

func TestJoinDirect(t *testing.T) {
	e := newEnv(t)
	addr := e.directEndpoint()
	if addr != "10.88.0.2/24" {
		t.Fatalf("endpoint address = %s", addr)
	}
	// The container joined another network first: it has eth0, eth2 and
	// a default route.
	sbox := e.sandbox("c1", testutil.Link{Name: "eth0", MAC: "02:42:ac:11:00:02"}, testutil.Link{Name: "eth2", MAC: "02:42:ac:12:00:02"})
	e.ns.SetDefaultRoutes(sbox, true, false)

	resp := e.mustJoin(netID(1), epID(1), sbox)
	if resp.InterfaceName != nil || !resp.DisableGatewayService || resp.Gateway != "" || resp.GatewayIPv6 != "" || len(resp.StaticRoutes) != 0 {
		t.Errorf("Join response = %+v: in direct mode Docker must move nothing and add no gateway", resp)
	}
	add := e.onlyCall(testutil.OpAdd)
	rt := add.RT
	if rt.ContainerID != epID(1) || rt.NetNS != sbox || rt.IfName != "eth1" {
		t.Errorf("ADD runtime conf = %+v; want the sandbox and eth1, the lowest free ethN", rt)
	}
	if !hasArg(rt.Args, "K8S_POD_NAME", "web") || !hasArg(rt.Args, "K8S_POD_NAMESPACE", k8sNamespace) || !hasArg(rt.Args, "IgnoreUnknown", "1") {
		t.Errorf("CNI_ARGS = %v", rt.Args)
	}
	addrs, routes := staticIPAM(t, add.Conf)
	if addrs != "[map[address:10.88.0.2/24 gateway:10.88.0.1]]" {
		t.Errorf("static addresses = %s, want the endpoint's with the network's gateway", addrs)
	}
	if routes != "[map[dst:10.50.0.0/16]]" {
		t.Errorf("routes = %s, want the default route dropped (the sandbox has one) and the others kept", routes)
	}
	if len(e.ns.Calls("Create", "MoveToHost")) != 0 {
		t.Errorf("direct mode made a scratch netns or moved a link: %v", e.ns.Calls("Create", "MoveToHost"))
	}

	link, ok := e.ns.Link(sbox, "eth1")
	if !ok || fmt.Sprint(link.Addrs) != "[10.88.0.2/24]" {
		t.Errorf("sandbox links = %+v, want eth1 with 10.88.0.2/24", e.ns.Links(sbox))
	}
	att := e.endpoint(epID(1)).Attachment
	if att == nil {
		t.Fatal("no attachment recorded")
	}
	if att.Mode != "direct" || att.NetNS != sbox || att.SandboxKey != sbox || att.IfName != "eth1" || att.ScratchNS != "" || att.MAC != link.MAC || string(att.Conflist) != string(add.Conf) {
		t.Errorf("attachment = %+v", att)
	}

	t.Run("sandbox without a default route gets the chain's", func(t *testing.T) {
		e.createEndpoint(netID(1), epID(2), "db")
		sbox2 := e.sandbox("c2")
		e.mustJoin(netID(1), epID(2), sbox2)
		add := e.cni.Calls(testutil.OpAdd)[1]
		if _, routes := staticIPAM(t, add.Conf); routes != "[map[dst:0.0.0.0/0] map[dst:10.50.0.0/16]]" {
			t.Errorf("routes = %s", routes)
		}
		if add.RT.IfName != "eth0" {
			t.Errorf("ifname = %s, want eth0", add.RT.IfName)
		}
		if v4, _, _ := e.ns.DefaultRoutes(sbox2); !v4 {
			t.Error("no default route in the sandbox")
		}
	})
}

func TestJoinMAC(t *testing.T) {
	t.Run("generated chain sets the endpoint's MAC", func(t *testing.T) {
		e := newEnv(t)
		e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(translate.OptJoin, "direct"))
		e.createEndpoint(netID(1), epID(1), "web")
		mac := e.endpoint(epID(1)).MAC
		sbox := e.sandbox("c1")
		e.mustJoin(netID(1), epID(1), sbox)
		if got := e.onlyCall(testutil.OpAdd).RT.CapabilityArgs["mac"]; got != mac {
			t.Errorf("mac capability arg = %v, want %s", got, mac)
		}
		if l, _ := e.ns.Link(sbox, "eth0"); l.MAC != mac {
			t.Errorf("container MAC = %s, want %s (what docker inspect shows)", l.MAC, mac)
		}
	})

	t.Run("direct mode refuses a MAC the chain cannot set", func(t *testing.T) {
		e := newEnv(t)
		e.mustCreateNetwork(netID(1), bound("shared"), generic(translate.OptJoin, "direct"))
		if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(1), EndpointID: epID(1),
			Interface: &network.EndpointInterface{Address: "10.88.0.7/24", MacAddress: "02:42:0a:58:00:07"}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.join(netID(1), epID(1), e.sandbox("c1"))
		wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: --mac-address 02:42:0a:58:00:07", `CNI network "shared" has no plugin with the "mac" capability`)
		if calls := e.cni.Calls(testutil.OpAdd); len(calls) != 0 {
			t.Errorf("ADD ran: %+v", calls)
		}
		if att := e.endpoint(epID(1)).Attachment; att != nil {
			t.Errorf("attachment recorded: %+v", att)
		}
	})
}

func TestJoinMove(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	key := filepath.Join(e.dir, "docker", "netns", "not-yet")
	scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
	hostIf := translate.HostIfName(epID(1))

	resp := e.mustJoin(netID(1), epID(1), key)
	if resp.InterfaceName == nil || resp.InterfaceName.SrcName != hostIf || resp.InterfaceName.DstPrefix != "eth" {
		t.Fatalf("interface name = %+v, want {%s eth}", resp.InterfaceName, hostIf)
	}
	if hostIf != "dcnie10001fffff" {
		t.Errorf("host interface name = %s", hostIf)
	}
	if resp.Gateway != "10.88.0.1" || !resp.DisableGatewayService {
		t.Errorf("Join response = %+v, want gateway 10.88.0.1 from the result", resp)
	}
	if want := []cnm.StaticRoute{{Destination: "10.50.0.0/16", RouteType: cnm.RouteNextHop, NextHop: "10.88.0.1"}}; !slices.Equal(resp.StaticRoutes, want) {
		t.Errorf("static routes = %+v, want %+v", resp.StaticRoutes, want)
	}
	add := e.onlyCall(testutil.OpAdd)
	if add.RT.NetNS != scratch || add.RT.IfName != "eth0" || add.RT.ContainerID != epID(1) {
		t.Errorf("ADD runtime conf = %+v; want the scratch netns %s and eth0", add.RT, scratch)
	}
	if calls := e.ns.Calls("Create"); len(calls) != 1 || calls[0].Args[0] != scratch {
		t.Errorf("Create calls = %v", calls)
	}
	if calls := e.ns.Calls("MoveToHost"); len(calls) != 1 || fmt.Sprint(calls[0].Args) != fmt.Sprint([]string{scratch, "eth0", hostIf}) {
		t.Errorf("MoveToHost calls = %v", calls)
	}
	att := e.endpoint(epID(1)).Attachment
	hostLink, ok := e.ns.Link(testutil.HostNetNS, hostIf)
	if !ok || hostLink.MAC != att.MAC || att.MAC == "" {
		t.Errorf("host link %s = %+v (found %v), attachment MAC %q", hostIf, hostLink, ok, att.MAC)
	}
	if _, ok := e.ns.Link(scratch, "eth0"); ok {
		t.Error("eth0 still in the scratch netns")
	}
	if att.Mode != "move" || att.ScratchNS != scratch || att.HostIfName != hostIf || att.SandboxKey != key {
		t.Errorf("attachment = %+v", att)
	}
}

func TestJoinAddFailsRollsBack(t *testing.T) {
	for _, mode := range []string{"direct", "handover", "move"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t)
			if mode == "direct" {
				e.directEndpoint()
			} else {
				e.boundEndpoint()
			}
			key := e.sandbox("c1")
			if mode == "move" {
				key = filepath.Join(e.dir, "docker", "netns", "not-yet")
			}
			scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
			e.cni.FailNext(testutil.OpAdd, errors.New("failed to set bridge addr: could not add IP address to \"cni0\": permission denied"))

			_, err := e.join(netID(1), epID(1), key)
			wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: cni ADD shared: failed to set bridge addr")
			add, del := e.onlyCall(testutil.OpAdd), e.onlyCall(testutil.OpDel)
			wantSameRT(t, add.RT, del.RT)
			if string(add.Conf) != string(del.Conf) {
				t.Errorf("rollback DEL ran a different conflist:\n%s\n%s", del.Conf, add.Conf)
			}
			if e.ns.Exists(scratch) {
				t.Error("scratch netns left behind")
			}
			if att := e.endpoint(epID(1)).Attachment; att != nil {
				t.Errorf("attachment left: %+v", att)
			}
			// Docker retries the container start: it works.
			if _, err := e.join(netID(1), epID(1), key); err != nil {
				t.Errorf("Join after a failed one: %v", err)
			}
		})
	}
}

// TestJoinResultWithoutReservedAddress: a wrong result fails the Join
// before the interface is handed over; DEL runs where ADD did.
func TestJoinResultWithoutReservedAddress(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	sbox := e.sandbox("c1")
	ip, ipn, _ := net.ParseCIDR("10.88.0.99/24")
	e.cni.SetResult(testutil.OpAdd, &current.Result{CNIVersion: "1.0.0",
		Interfaces: []*current.Interface{{Name: "eth0", Sandbox: sbox, Mac: "02:00:00:00:00:99"}},
		IPs:        []*current.IPConfig{{Address: net.IPNet{IP: ip, Mask: ipn.Mask}, Interface: current.Int(0)}}})

	_, err := e.join(netID(1), epID(1), sbox)
	wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: cni ADD shared: the chain did not configure 10.88.0.2/24 on eth0")
	wantSameRT(t, e.onlyCall(testutil.OpAdd).RT, e.onlyCall(testutil.OpDel).RT)
	if _, ok := e.ns.Link(sbox, "eth0"); ok {
		t.Error("the interface ADD made is still in the sandbox")
	}
	if att := e.endpoint(epID(1)).Attachment; att != nil {
		t.Errorf("attachment left: %+v", att)
	}
}

func TestLeave(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1")
	e.mustJoin(netID(1), epID(1), sbox)
	att := e.endpoint(epID(1)).Attachment

	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	add, del := e.onlyCall(testutil.OpAdd), e.onlyCall(testutil.OpDel)
	wantSameRT(t, add.RT, del.RT)
	if string(del.Conf) != string(att.Conflist) {
		t.Errorf("DEL conflist differs from the recorded one")
	}
	if ep := e.endpoint(epID(1)); ep.Attachment != nil {
		t.Errorf("attachment left: %+v", ep.Attachment)
	}
	if _, ok := e.ns.Link(sbox, "eth0"); ok {
		t.Error("eth0 still in the sandbox")
	}
	// The address stays reserved until Docker releases it.
	if _, ok := e.cni.Reserved("shared")[netip.MustParseAddr("10.88.0.2")]; !ok {
		t.Error("Leave released the endpoint's address")
	}

	e.cni.ResetCalls()
	for _, id := range []string{epID(1), epID(9)} {
		if err := e.leave(netID(1), id); err != nil {
			t.Errorf("Leave %s again: %v", translate.ShortID(id), err)
		}
	}
	if calls := e.cni.Calls(); len(calls) != 0 {
		t.Errorf("repeated Leave ran CNI: %+v", calls)
	}
}

func TestLeaveDelFails(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	e.cni.FailNext(testutil.OpDel, errors.New("portmap: iptables: resource busy"))
	wantErr(t, e.leave(netID(1), epID(1)), "leave endpoint e10001ffffff on network a10001ffffff: cni DEL: portmap: iptables: resource busy")
	if e.endpoint(epID(1)).Attachment == nil {
		t.Fatal("attachment forgotten although DEL failed: a retry could not undo the chain")
	}
	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Errorf("retried Leave: %v", err)
	}
	if n := len(e.cni.Calls(testutil.OpDel)); n != 2 {
		t.Errorf("%d DELs, want 2", n)
	}
}

func TestDeleteEndpointWithoutLeave(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1")
	e.mustJoin(netID(1), epID(1), sbox)

	if _, err := e.d.DeleteEndpoint(e.ctx, &network.DeleteEndpointRequest{NetworkID: netID(1), EndpointID: epID(1)}); err != nil {
		t.Fatal(err)
	}
	wantSameRT(t, e.onlyCall(testutil.OpAdd).RT, e.onlyCall(testutil.OpDel).RT)
	if _, err := e.st.Endpoint(epID(1)); err == nil {
		t.Error("endpoint still stored")
	}
	if _, ok := e.ns.Link(sbox, "eth0"); ok {
		t.Error("eth0 still in the sandbox")
	}
	e.cni.ResetCalls()
	if _, err := e.d.DeleteEndpoint(e.ctx, &network.DeleteEndpointRequest{NetworkID: netID(1), EndpointID: epID(1)}); err != nil {
		t.Errorf("second DeleteEndpoint: %v", err)
	}
	if calls := e.cni.Calls(); len(calls) != 0 {
		t.Errorf("second DeleteEndpoint ran CNI: %+v", calls)
	}
}

// TestDelVanishedNetNS: the container's netns is gone before Leave (it
// died); DEL must still run, with an empty CNI_NETNS as the spec allows.
func TestDelVanishedNetNS(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1")
	e.mustJoin(netID(1), epID(1), sbox)
	e.ns.DropNetNS(sbox)

	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	want := e.onlyCall(testutil.OpAdd).RT
	want.NetNS = ""
	wantSameRT(t, want, e.onlyCall(testutil.OpDel).RT)
	if e.endpoint(epID(1)).Attachment != nil {
		t.Error("attachment left")
	}
}

// TestLeaveMoveReclaims: in move mode libnetwork moved and renamed the
// interface; before DEL the driver gives it back to the scratch netns
// under the name and addresses ADD made it with, wherever it is now.
func TestLeaveMoveReclaims(t *testing.T) {
	cases := []struct {
		name string
		// where libnetwork left the link: "sandbox", "host" (never moved)
		// or "" (gone).
		where string
	}{
		{"link in the sandbox", "sandbox"},
		{"link still in the host", "host"},
		{"link gone", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.boundEndpoint()
			key := filepath.Join(e.dir, "docker", "netns", "c1")
			scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
			hostIf := translate.HostIfName(epID(1))
			e.mustJoin(netID(1), epID(1), key)
			mac := e.endpoint(epID(1)).Attachment.MAC
			e.ns.AddNetNS(key)
			switch tc.where {
			case "sandbox":
				if err := e.ns.Move(testutil.HostNetNS, hostIf, key, "eth0"); err != nil {
					t.Fatal(err)
				}
			case "":
				if err := e.ns.DeleteHostLink(hostIf); err != nil {
					t.Fatal(err)
				}
			}
			atDel := e.linksAtDel()

			if err := e.leave(netID(1), epID(1)); err != nil {
				t.Fatal(err)
			}
			del := e.onlyCall(testutil.OpDel)
			if del.RT.NetNS != scratch || del.RT.IfName != "eth0" {
				t.Errorf("DEL runtime conf = %+v, want the scratch netns and eth0", del.RT)
			}
			i := slices.IndexFunc(atDel(), func(l testutil.Link) bool { return l.Name == "eth0" })
			if tc.where == "" {
				if i >= 0 {
					t.Errorf("a link appeared at DEL: %+v", atDel())
				}
			} else if i < 0 || atDel()[i].MAC != mac || fmt.Sprint(atDel()[i].Addrs) != "[10.88.0.2/24]" {
				t.Errorf("links in the scratch netns at DEL = %+v, want eth0 %s with 10.88.0.2/24", atDel(), mac)
			}
			if tc.where != "" {
				reclaims := e.ns.Calls("Reclaim")
				if len(reclaims) == 0 || reclaims[len(reclaims)-1].Args[1] != mac || reclaims[len(reclaims)-1].Args[2] != scratch {
					t.Errorf("Reclaim calls = %v", reclaims)
				}
			}
			e.wantDetached(scratch, key, mac, hostIf)
		})
	}
}

// linksAtDel records the links of the netns DEL runs in, as DEL starts;
// the returned func reads them.
func (e *env) linksAtDel() func() []testutil.Link {
	var mu sync.Mutex
	var links []testutil.Link
	e.cni.OnCall = func(c testutil.Call) {
		if c.Op == testutil.OpDel {
			mu.Lock()
			links = e.ns.Links(c.RT.NetNS)
			mu.Unlock()
		}
	}
	return func() []testutil.Link {
		mu.Lock()
		defer mu.Unlock()
		return links
	}
}

// wantDetached checks that the endpoint's Leave left nothing: no scratch
// netns, no link of its MAC or host name in the sandbox or the host, no
// attachment.
func (e *env) wantDetached(scratch, sbox, mac, hostIf string) {
	e.t.Helper()
	if e.ns.Exists(scratch) {
		e.t.Error("scratch netns left")
	}
	for _, ns := range []string{sbox, testutil.HostNetNS} {
		for _, l := range e.ns.Links(ns) {
			if l.MAC == mac || l.Name == hostIf {
				e.t.Errorf("link %+v left in %s", l, ns)
			}
		}
	}
	if e.endpoint(epID(1)).Attachment != nil {
		e.t.Error("attachment left")
	}
}

func TestJoinRepeated(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		e := newEnv(t)
		e.directEndpoint()
		sbox := e.sandbox("c1")
		e.mustJoin(netID(1), epID(1), sbox)
		e.mustJoin(netID(1), epID(1), sbox)
		var ops []string
		for _, c := range e.cni.Calls(testutil.OpAdd, testutil.OpDel) {
			ops = append(ops, string(c.Op)+" "+c.RT.IfName)
		}
		if strings.Join(ops, ", ") != "ADD eth0, DEL eth0, ADD eth0" {
			t.Errorf("calls = %v, want the first attachment undone before the second", ops)
		}
		var names []string
		for _, l := range e.ns.Links(sbox) {
			names = append(names, l.Name)
		}
		if fmt.Sprint(names) != "[lo eth0]" {
			t.Errorf("sandbox links = %v", names)
		}
	})

	t.Run("move", func(t *testing.T) {
		e := newEnv(t)
		e.boundEndpoint()
		key := filepath.Join(e.dir, "docker", "netns", "not-yet")
		first := e.mustJoin(netID(1), epID(1), key)
		second := e.mustJoin(netID(1), epID(1), key)
		if *first.InterfaceName != *second.InterfaceName {
			t.Errorf("interface names %+v and %+v", first.InterfaceName, second.InterfaceName)
		}
		n := 0
		for _, l := range e.ns.Links(testutil.HostNetNS) {
			if l.Name == translate.HostIfName(epID(1)) {
				n++
				if l.MAC != e.endpoint(epID(1)).Attachment.MAC {
					t.Errorf("host link %+v is not the second attachment's", l)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d host links for the endpoint, want 1", n)
		}
	})
}

func TestEndpointOperInfo(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	resp, err := e.d.EndpointOperInfo(e.ctx, &network.InfoRequest{NetworkID: netID(1), EndpointID: epID(1)})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(resp.Value); got != "map[cni.addresses:[10.88.0.2/24] cni.containerid:"+epID(1)+" cni.ifname:eth0 cni.mode:handover]" {
		t.Errorf("oper info = %s", got)
	}
}

func TestJoinMoveToHostFailsRollsBack(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	key := filepath.Join(e.dir, "docker", "netns", "not-yet")
	scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
	e.ns.Fail("MoveToHost", errors.New("move eth0 to the host netns: operation not permitted"))

	_, err := e.join(netID(1), epID(1), key)
	wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: move eth0 to the host netns: operation not permitted")
	wantSameRT(t, e.onlyCall(testutil.OpAdd).RT, e.onlyCall(testutil.OpDel).RT)
	if e.ns.Exists(scratch) {
		t.Error("scratch netns left")
	}
	if att := e.endpoint(epID(1)).Attachment; att != nil {
		t.Errorf("attachment left: %+v", att)
	}
}

// TestJoinMoveStaleScratch: a scratch netns left by a crash mid-Join does
// not stop the next Join.
func TestJoinMoveStaleScratch(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
	e.ns.AddNetNS(scratch, testutil.Link{Name: "eth0", MAC: "02:00:00:00:00:01"})
	e.mustJoin(netID(1), epID(1), filepath.Join(e.dir, "docker", "netns", "not-yet"))
	if links := e.ns.Links(scratch); len(links) != 1 || links[0].Name != "lo" {
		names := fmt.Sprint(links)
		t.Errorf("scratch links after Join = %s, want only lo", names)
	}
}

// TestJoinUsesRefreshedConflist: new joins of a bound network run the
// conflist as it is now in the conf dir; an endpoint joined before keeps
// (and DELs with) the one it was added with; an unusable new version is
// ignored.
func TestJoinUsesRefreshedConflist(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	e.createEndpoint(netID(1), epID(2), "db")
	e.createEndpoint(netID(1), epID(3), "cache")
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	old := e.endpoint(epID(1)).Attachment.Conflist

	changed := strings.Replace(sharedConflist, `{"dst": "10.50.0.0/16"}`, `{"dst": "10.60.0.0/16"}`, 1)
	if err := os.WriteFile(e.confFile, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(netID(1), epID(2), e.sandbox("c2"))
	if _, routes := staticIPAM(t, e.cni.Calls(testutil.OpAdd)[1].Conf); routes != "[map[dst:0.0.0.0/0] map[dst:10.60.0.0/16]]" {
		t.Errorf("new join's routes = %s, want the changed conflist's", routes)
	}
	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	if del := e.cni.Calls(testutil.OpDel)[0]; string(del.Conf) != string(old) {
		t.Errorf("DEL of the earlier endpoint ran the changed conflist")
	}

	if err := os.WriteFile(e.confFile, []byte(`{"cniVersion": "1.0.0", "name": "shared", "plugins": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(netID(1), epID(3), e.sandbox("c3"))
	if _, routes := staticIPAM(t, e.cni.Calls(testutil.OpAdd)[2].Conf); routes != "[map[dst:0.0.0.0/0] map[dst:10.60.0.0/16]]" {
		t.Errorf("join after a broken edit ran routes %s, want the last good conflist's", routes)
	}
}

// TestJoinKeepsConflistOfItsVersion: a bound network created with
// -o cni.version, which docker network inspect shows, does not take a
// changed conflist that declares another version (inspect would lie); one
// that keeps the version is taken as usual.
func TestJoinKeepsConflistOfItsVersion(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), bound("shared"), generic(translate.OptNetwork, "shared", translate.OptVersion, "1.0.0"))
	e.createEndpoint(netID(1), epID(1), "web")
	e.createEndpoint(netID(1), epID(2), "db")

	older := strings.Replace(sharedConflist, `"cniVersion": "1.0.0"`, `"cniVersion": "0.4.0"`, 1)
	older = strings.Replace(older, `{"dst": "10.50.0.0/16"}`, `{"dst": "10.60.0.0/16"}`, 1)
	if err := os.WriteFile(e.confFile, []byte(older), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	add := e.cni.Calls(testutil.OpAdd)[0].Conf
	if _, routes := staticIPAM(t, add); routes != "[map[dst:0.0.0.0/0] map[dst:10.50.0.0/16]]" || testutil.Decode(t, add)["cniVersion"] != "1.0.0" {
		t.Errorf("join ran a conflist of another version than -o cni.version=1.0.0: %s", add)
	}
	if nw := e.network(netID(1)); nw.CNIVersion != "1.0.0" {
		t.Errorf("network's version became %s", nw.CNIVersion)
	}

	same := strings.Replace(sharedConflist, `{"dst": "10.50.0.0/16"}`, `{"dst": "10.60.0.0/16"}`, 1)
	if err := os.WriteFile(e.confFile, []byte(same), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustJoin(netID(1), epID(2), e.sandbox("c2"))
	if _, routes := staticIPAM(t, e.cni.Calls(testutil.OpAdd)[1].Conf); routes != "[map[dst:0.0.0.0/0] map[dst:10.60.0.0/16]]" {
		t.Errorf("join after a same-version edit ran routes %s, want the changed conflist's", routes)
	}
}

// TestJoinHandover: the sandbox exists (Docker 28+); the chain runs in it,
// then the interface goes to the host for libnetwork to move back under the
// same name, so that libnetwork counts it when it names its own drivers'
// interfaces.
func TestJoinHandover(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	// The container joined a network of Docker's bridge driver first: it
	// has eth0 and a default route.
	sbox := e.sandbox("c1", testutil.Link{Name: "eth0", MAC: "02:42:ac:11:00:02"})
	e.ns.SetDefaultRoutes(sbox, true, false)
	scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
	hostIf := translate.HostIfName(epID(1))

	resp := e.mustJoin(netID(1), epID(1), sbox)
	want := cnm.InterfaceName{SrcName: hostIf, DstPrefix: "eth", DstName: "eth1"}
	if resp.InterfaceName == nil || *resp.InterfaceName != want {
		t.Fatalf("interface name = %+v, want %+v", resp.InterfaceName, want)
	}
	// The chain's default route was left out (the sandbox has one), but
	// the network still offers its gateway: Docker picks the container's.
	if resp.Gateway != "10.88.0.1" || !resp.DisableGatewayService {
		t.Errorf("Join response = %+v, want gateway 10.88.0.1", resp)
	}
	if want := []cnm.StaticRoute{{Destination: "10.50.0.0/16", RouteType: cnm.RouteNextHop, NextHop: "10.88.0.1"}}; !slices.Equal(resp.StaticRoutes, want) {
		t.Errorf("static routes = %+v, want %+v", resp.StaticRoutes, want)
	}
	add := e.onlyCall(testutil.OpAdd)
	if add.RT.NetNS != sbox || add.RT.IfName != "eth1" {
		t.Errorf("ADD runtime conf = %+v; want the sandbox and eth1", add.RT)
	}
	if _, routes := staticIPAM(t, add.Conf); routes != "[map[dst:10.50.0.0/16]]" {
		t.Errorf("routes = %s, want the default route dropped", routes)
	}
	att := e.endpoint(epID(1)).Attachment
	if att.Mode != "handover" || att.NetNS != sbox || att.ScratchNS != scratch || att.HostIfName != hostIf || att.IfName != "eth1" {
		t.Errorf("attachment = %+v", att)
	}
	if l, ok := e.ns.Link(testutil.HostNetNS, hostIf); !ok || l.MAC != att.MAC || att.MAC == "" {
		t.Errorf("host link %s = %+v (found %v), attachment MAC %q", hostIf, l, ok, att.MAC)
	}
	if _, ok := e.ns.Link(sbox, "eth1"); ok {
		t.Error("eth1 still in the sandbox: libnetwork could not move it")
	}
	if e.ns.Exists(scratch) {
		t.Error("a scratch netns was made at Join")
	}

	t.Run("sandbox without a default route", func(t *testing.T) {
		e.createEndpoint(netID(1), epID(2), "db")
		resp := e.mustJoin(netID(1), epID(2), e.sandbox("c2"))
		add := e.cni.Calls(testutil.OpAdd)[1]
		if _, routes := staticIPAM(t, add.Conf); routes != "[map[dst:0.0.0.0/0] map[dst:10.50.0.0/16]]" {
			t.Errorf("routes = %s", routes)
		}
		if resp.Gateway != "10.88.0.1" || resp.InterfaceName.DstName != "eth0" {
			t.Errorf("Join response = %+v, interface %+v", resp, resp.InterfaceName)
		}
	})

	t.Run("a MAC the chain cannot set is left to libnetwork", func(t *testing.T) {
		if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(1), EndpointID: epID(3),
			Interface: &network.EndpointInterface{Address: "10.88.0.9/24", MacAddress: "02:42:0a:58:00:09"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.join(netID(1), epID(3), e.sandbox("c3")); err != nil {
			t.Errorf("Join: %v", err)
		}
	})
}

// TestJoinDirectRefusedWithoutNetNS: -o cni.join=direct cannot work where
// the sandbox does not exist at Join (20.10); it is refused, not ignored.
func TestJoinDirectRefusedWithoutNetNS(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	_, err := e.join(netID(1), epID(1), filepath.Join(e.dir, "docker", "netns", "not-yet"))
	wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: -o cni.join=direct: this engine makes the container's netns after Join")
	if calls := e.cni.Calls(testutil.OpAdd); len(calls) != 0 {
		t.Errorf("ADD ran: %+v", calls)
	}
	if att := e.endpoint(epID(1)).Attachment; att != nil {
		t.Errorf("attachment recorded: %+v", att)
	}
}

// TestLeaveHandoverReclaims: wherever libnetwork left the interface (in the
// sandbox under its ADD name, moved back out to the host, or gone), DEL
// gets it in a scratch netns under its ADD name with its addresses.
func TestLeaveHandoverReclaims(t *testing.T) {
	for _, where := range []string{"sandbox", "host", ""} {
		t.Run("link in "+where, func(t *testing.T) {
			e := newEnv(t)
			e.boundEndpoint()
			sbox := e.sandbox("c1", testutil.Link{Name: "eth0"})
			scratch := filepath.Join(e.scratchDir, translate.ShortID(epID(1)))
			hostIf := translate.HostIfName(epID(1))
			resp := e.mustJoin(netID(1), epID(1), sbox)
			mac := e.endpoint(epID(1)).Attachment.MAC
			// libnetwork moves it in as DstName.
			if err := e.ns.Move(testutil.HostNetNS, hostIf, sbox, resp.InterfaceName.DstName); err != nil {
				t.Fatal(err)
			}
			switch where {
			case "host":
				if err := e.ns.Move(sbox, "eth1", testutil.HostNetNS, hostIf); err != nil {
					t.Fatal(err)
				}
			case "":
				e.ns.DropNetNS(sbox)
			}
			atDel := e.linksAtDel()
			if err := e.leave(netID(1), epID(1)); err != nil {
				t.Fatal(err)
			}
			del := e.onlyCall(testutil.OpDel)
			if del.RT.NetNS != scratch || del.RT.IfName != "eth1" {
				t.Errorf("DEL runtime conf = %+v, want the scratch netns and eth1", del.RT)
			}
			i := slices.IndexFunc(atDel(), func(l testutil.Link) bool { return l.Name == "eth1" })
			if where == "" {
				if i >= 0 {
					t.Errorf("a link appeared at DEL: %+v", atDel())
				}
			} else if i < 0 || atDel()[i].MAC != mac || fmt.Sprint(atDel()[i].Addrs) != "[10.88.0.2/24]" {
				t.Errorf("links in the scratch netns at DEL = %+v, want eth1 %s with 10.88.0.2/24", atDel(), mac)
			}
			e.wantDetached(scratch, sbox, mac, hostIf)
		})
	}
}

// TestJoinEndpointIfName: --driver-opt com.docker.network.endpoint.ifname
// names the interface (ADD and DstName alike); a name the container already
// has, a bad name, and engines that name interfaces themselves are refused.
func TestJoinEndpointIfName(t *testing.T) {
	e := newEnv(t)
	e.mustCreateNetwork(netID(1), bound("shared"), map[string]any{})
	create := func(ep, addr string, opts map[string]any) error {
		_, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(1), EndpointID: ep,
			Interface: &network.EndpointInterface{Address: addr}, Options: opts})
		return err
	}
	if err := create(epID(1), "10.88.0.11/24", map[string]any{cnm.OptIfname: "pods0"}); err != nil {
		t.Fatal(err)
	}
	resp := e.mustJoin(netID(1), epID(1), e.sandbox("c1", testutil.Link{Name: "eth0"}))
	if add := e.onlyCall(testutil.OpAdd); add.RT.IfName != "pods0" || resp.InterfaceName.DstName != "pods0" {
		t.Errorf("ADD ifname %s, DstName %s; want pods0", add.RT.IfName, resp.InterfaceName.DstName)
	}

	if err := create(epID(2), "10.88.0.12/24", map[string]any{cnm.OptIfname: "eth0"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.join(netID(1), epID(2), e.sandbox("c2", testutil.Link{Name: "eth0"}))
	wantErr(t, err, "com.docker.network.endpoint.ifname=eth0: the container already has an interface of that name")

	_, err = e.join(netID(1), epID(2), filepath.Join(e.dir, "docker", "netns", "not-yet"))
	wantErr(t, err, "com.docker.network.endpoint.ifname=eth0: this engine names the container's interfaces itself")
	if n := len(e.cni.Calls(testutil.OpAdd)); n != 1 {
		t.Errorf("%d ADDs, want only the first endpoint's", n)
	}

	err = create(epID(3), "10.88.0.13/24", map[string]any{cnm.OptIfname: "a/b"})
	wantErr(t, err, "create endpoint e10003ffffff: option com.docker.network.endpoint.ifname:", "not a valid interface name")
}
