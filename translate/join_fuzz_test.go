package translate_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/translate"
)

// planJoinRequest is the request.json of a planjoin- golden case.
type planJoinRequest struct {
	Network  translate.JoinNetwork  `json:"network"`
	Endpoint translate.JoinEndpoint `json:"endpoint"`
	Sandbox  translate.SandboxFacts `json:"sandbox"`
	Host     translate.JoinHost     `json:"host"`
	OnLink   []netip.Prefix         `json:"onLink"`
	// Gateway4 is the gateway of the default route the chain left on the
	// interface, if any; Result the chain's CNI result, when it is not
	// what the reference plugins report for the plan (chainResult).
	Gateway4 netip.Addr      `json:"gateway4"`
	Result   json.RawMessage `json:"result"`
}

// Bits of FuzzJoin's flags argument.
const (
	joinExists uint8 = 1 << iota
	joinDefault4
	joinDefault6
	joinInternal
	joinDirect
)

// FuzzJoin plans Joins of fuzzed stored networks (conflist, gateways,
// internal, -o cni.join) and endpoints (addresses, interface name, MAC,
// cni.args label) into fuzzed sandboxes (existing or not, links, default
// routes), then answers each with a fuzzed CNI result. Nothing may panic.
// When PlanJoin succeeds:
//   - its conflist re-parses as the same chain, and its static ipam section
//     holds exactly the endpoint's addresses, in order, each with a gateway
//     (if any) of the address's subnet;
//   - the mode, netns and interface names follow the sandbox: move into a
//     scratch netns when it does not exist yet, else handover (or direct
//     with -o cni.join=direct) into it, under a name none of its links has;
//   - the conflist adds no default route of a family the sandbox has;
//   - an internal network offers no gateway and publishes nothing at Join;
//   - CNI_ARGS pass through intact (checkArgs).
//
// JoinResponse then answers direct mode with DirectJoinResponse, and
// otherwise names the interface to move, has no gateway on an internal
// network, and only routes whose destination and next hop libnetwork can
// parse.
func FuzzJoin(f *testing.F) {
	var results [][]byte
	for _, r := range goldenRequests[struct {
		Result json.RawMessage `json:"result"`
	}](f, "join") {
		results = append(results, r.Result)
	}
	for i, r := range goldenRequests[planJoinRequest](f, "planjoin") {
		var flags uint8
		for bit, on := range map[uint8]bool{
			joinExists: r.Sandbox.Exists, joinDefault4: r.Sandbox.Default4, joinDefault6: r.Sandbox.Default6,
			joinInternal: r.Network.Internal, joinDirect: r.Network.Join == translate.JoinDirect,
		} {
			if on {
				flags |= bit
			}
		}
		var onLink []string
		for _, p := range r.OnLink {
			onLink = append(onLink, p.String())
		}
		if r.Gateway4.IsValid() {
			onLink = append(onLink, r.Gateway4.String())
		}
		f.Add([]byte(r.Network.Conflist), strings.Join(r.Endpoint.Addresses, ","), strings.Join(append(r.Network.Gateways, r.Endpoint.Gateways...), ","),
			strings.Join(r.Sandbox.Links, ","), flags, r.Endpoint.IfName, r.Endpoint.MAC, r.Endpoint.Identity.Labels[translate.LabelCNIArgs],
			results[i%len(results)], strings.Join(onLink, ","))
	}
	for i, c := range seedConflists(f) {
		f.Add(c, "10.88.0.2/24,fd00:88::2/64", "10.88.0.1,fd00:88::1", "lo,eth0", joinExists|joinDefault4, "", "", "", results[i%len(results)], "")
	}

	f.Fuzz(func(t *testing.T, conflist []byte, addrs, gateways, links string, flags uint8, ifName, mac, label string, result []byte, onLink string) {
		nw := translate.JoinNetwork{
			CNINetwork: "fuzz", Conflist: conflist, Gateways: split(gateways), Internal: flags&joinInternal != 0,
		}
		if flags&joinDirect != 0 {
			nw.Join = translate.JoinDirect
		}
		ep := translate.JoinEndpoint{
			ID:        "e10001ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
			Addresses: split(addrs), IfName: ifName, MAC: mac,
			Identity: translate.Identity{Name: "web", Labels: map[string]string{translate.LabelCNIArgs: label}},
		}
		sb := translate.SandboxFacts{
			Key: "/var/run/docker/netns/c1", Exists: flags&joinExists != 0, Links: split(links),
			Default4: flags&joinDefault4 != 0, Default6: flags&joinDefault6 != 0,
		}
		host := translate.JoinHost{ScratchDir: "/run/docker-cni/netns", K8sNamespace: "default"}
		plan, err := translate.PlanJoin(nw, ep, sb, host)
		if err != nil {
			return
		}
		checkPlan(t, plan, nw, ep, sb)

		var res current.Result
		if err := json.Unmarshal(result, &res); err != nil {
			return
		}
		translate.CheckAddresses(&res, plan)
		translate.ResultMAC(&res, plan.IfName)
		var lr translate.LinkRoutes
		for _, s := range split(onLink) {
			if p, err := netip.ParsePrefix(s); err == nil {
				lr.OnLink = append(lr.OnLink, p)
			} else if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
				lr.Gateway4 = a
			} else if err == nil {
				lr.Gateway6 = a
			}
		}
		offLink := translate.OffLinkSubnets(plan, lr.OnLink)
		for _, s := range offLink {
			if s != s.Masked() || slices.Contains(lr.OnLink, s) {
				t.Fatalf("OffLinkSubnets(%v) = %v", lr.OnLink, offLink)
			}
		}
		resp, err := translate.JoinResponse(plan, &res, lr)
		if err != nil {
			return
		}
		checkJoinResponse(t, plan, resp)
	})
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func checkPlan(t *testing.T, plan translate.JoinPlan, nw translate.JoinNetwork, ep translate.JoinEndpoint, sb translate.SandboxFacts) {
	t.Helper()
	pl, err := translate.ParseList(nw.Conflist)
	if err != nil {
		t.Fatalf("PlanJoin accepted a conflist ParseList refuses: %v", err)
	}
	again := sameChain(t, "PlanJoin", pl, plan.Conflist)
	if plan.ListVersion != pl.CNIVersion {
		t.Fatalf("plan ListVersion %q, conflist cniVersion %q", plan.ListVersion, pl.CNIVersion)
	}
	static, _ := ipamSection(t, plan.Conflist)
	if static["type"] != "static" {
		t.Fatalf("plan conflist ipam section %v, want the static plugin:\n%s", static, plan.Conflist)
	}
	got := staticAddrs(t, static)
	if len(got) != len(ep.Addresses) || !slices.Equal(got, plan.Addresses) {
		t.Fatalf("plan conflist's static addresses %v, plan's %v, endpoint's %q", got, plan.Addresses, ep.Addresses)
	}
	for i, a := range got {
		want, _ := netip.ParsePrefix(ep.Addresses[i])
		if a.Address != want {
			t.Fatalf("static address %d is %s, the endpoint's is %q", i, a.Address, ep.Addresses[i])
		}
		if a.Gateway.IsValid() && (!a.Address.Masked().Contains(a.Gateway) || a.Gateway.Is4() != a.Address.Addr().Is4()) {
			t.Fatalf("static address %s has gateway %s outside its subnet", a.Address, a.Gateway)
		}
	}

	switch {
	case !sb.Exists:
		if plan.Mode != translate.JoinMove || !plan.MakeScratch || plan.NetNS != plan.ScratchNS || plan.NetNS == "" || plan.IfName != "eth0" {
			t.Fatalf("sandbox not made yet, plan %+v, want move into a scratch netns made for it", plan)
		}
	case nw.Join == translate.JoinDirect:
		if plan.Mode != translate.JoinDirect || plan.NetNS != sb.Key || plan.ScratchNS != "" || plan.HostIfName != "" {
			t.Fatalf("-o cni.join=direct, plan %+v, want direct into %s", plan, sb.Key)
		}
	case plan.KeepName:
		// A plugin that adds its own default route, where the sandbox
		// has one: the chain runs in a scratch netns.
		if !pl.OwnDefaultRoutes() || !(sb.Default4 || sb.Default6) || plan.Mode != translate.JoinMove || !plan.MakeScratch ||
			plan.NetNS != plan.ScratchNS || plan.NetNS == "" {
			t.Fatalf("plan %+v keeps the name: want move into a scratch netns for a chain with its own default routes", plan)
		}
	default:
		if plan.Mode != translate.JoinHandover || plan.NetNS != sb.Key || plan.ScratchNS == "" || plan.MakeScratch {
			t.Fatalf("plan %+v, want handover in %s", plan, sb.Key)
		}
		for _, a := range plan.Addresses {
			if v6 := a.Address.Addr().Is6(); pl.OwnDefaultRoutes() && ((v6 && sb.Default6) || (!v6 && sb.Default4)) {
				t.Fatalf("plan %+v runs a chain with its own default routes in a sandbox that has one for %s", plan, a.Address)
			}
		}
	}
	if plan.Mode != translate.JoinDirect && translate.ValidIfName(plan.HostIfName) != nil {
		t.Fatalf("plan %s: host interface name %q", plan.Mode, plan.HostIfName)
	}
	if sb.Exists {
		if slices.Contains(sb.Links, plan.IfName) || (ep.IfName != "" && plan.IfName != ep.IfName) ||
			(ep.IfName == "" && translate.ValidIfName(plan.IfName) != nil) {
			t.Fatalf("sandbox links %q, endpoint asked %q: plan interface %q", sb.Links, ep.IfName, plan.IfName)
		}
		if (sb.Default4 && again.HasDefaultRoute(false)) || (sb.Default6 && again.HasDefaultRoute(true)) {
			t.Fatalf("sandbox has default routes (v4 %v, v6 %v) and the plan's chain adds one:\n%s", sb.Default4, sb.Default6, plan.Conflist)
		}
	}
	if nw.Internal && (plan.OfferGateway4 || plan.OfferGateway6 || plan.PublishAtJoin) {
		t.Fatalf("internal network: plan %+v offers a gateway or publishes", plan)
	}
	checkArgs(t, plan.Args)
	if ep.MAC != "" && plan.Capability != nil && plan.Capability["mac"] != ep.MAC {
		t.Fatalf("plan capability args %v, endpoint MAC %q", plan.Capability, ep.MAC)
	}
}

func checkJoinResponse(t *testing.T, plan translate.JoinPlan, resp *cnm.JoinResponse) {
	t.Helper()
	if _, err := json.Marshal(resp); err != nil {
		t.Fatalf("Join response does not encode: %v", err)
	}
	if plan.Mode == translate.JoinDirect {
		if !reflect.DeepEqual(resp, translate.DirectJoinResponse()) {
			t.Fatalf("direct mode answered %+v", resp)
		}
		return
	}
	if resp.InterfaceName == nil || resp.InterfaceName.SrcName != plan.HostIfName || resp.InterfaceName.DstPrefix != translate.DstPrefix ||
		(plan.Mode == translate.JoinHandover && resp.InterfaceName.DstName != plan.IfName) || !resp.DisableGatewayService {
		t.Fatalf("%s mode (interface %s, in the host %s) answered %+v", plan.Mode, plan.IfName, plan.HostIfName, resp)
	}
	if plan.Internal && (resp.Gateway != "" || resp.GatewayIPv6 != "") {
		t.Fatalf("internal network answered gateways %q %q", resp.Gateway, resp.GatewayIPv6)
	}
	for _, gw := range []string{resp.Gateway, resp.GatewayIPv6} {
		if _, err := netip.ParseAddr(gw); gw != "" && err != nil {
			t.Fatalf("Join response gateway %q: %v", gw, err)
		}
	}
	for _, r := range resp.StaticRoutes {
		if _, err := netip.ParsePrefix(r.Destination); err != nil {
			t.Fatalf("static route %+v: destination: %v", r, err)
		}
		switch r.RouteType {
		case cnm.RouteConnected:
			if r.NextHop != "" {
				t.Fatalf("connected route %+v has a next hop", r)
			}
		case cnm.RouteNextHop:
			if _, err := netip.ParseAddr(r.NextHop); err != nil {
				t.Fatalf("static route %+v: next hop: %v", r, err)
			}
		default:
			t.Fatalf("static route %+v: route type %d", r, r.RouteType)
		}
	}
}
