package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"slices"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnm"
)

// JoinNetwork is what a Join needs of the stored network.
type JoinNetwork struct {
	CNINetwork string
	// Conflist is the chain new joins run, as stored (bound or generated).
	Conflist json.RawMessage
	// Gateways are the network's per-family gateways (no prefix length).
	Gateways []string
	Internal bool
	// Join is the -o cni.join mode ("" is handover where the engine
	// allows it).
	Join JoinMode
	// Bound says the chain is a conflist of the conf dir; a generated one
	// leaves publishing ports to docker-cni.
	Bound bool `json:",omitempty"`
	// Args are the network's -o cni.args, as given.
	Args NetworkArgs `json:",omitzero"`
}

// JoinEndpoint is what a Join needs of the stored endpoint.
type JoinEndpoint struct {
	ID string
	// Addresses are the CIDRs IPAM reserved for the endpoint; Gateways the
	// gateways its IPAM plugin returned with them, where it did (they win
	// over the network's).
	Addresses []string
	Gateways  []string `json:",omitempty"`
	// MAC is the address Docker or docker-cni chose ("" for none).
	MAC string
	// IfName is the interface name the endpoint asked for, if any.
	IfName string
	// Identity is what is known of the endpoint's container.
	Identity Identity
}

// SandboxFacts is what the edges observed of the container's sandbox.
type SandboxFacts struct {
	// Key is the sandbox key (netns path) Docker sent.
	Key string
	// Exists says the netns at Key exists already: Docker Engine 28 and
	// newer make it before Join, older engines after.
	Exists bool
	// Links are the names of the links in it; Default4 and Default6 say
	// whether it has an IPv4 and an IPv6 default route.
	Links              []string
	Default4, Default6 bool
}

// JoinHost are the daemon's facts a Join plan needs.
type JoinHost struct {
	// ScratchDir holds the scratch netns of joins, one per endpoint.
	ScratchDir string
	// K8sNamespace is the K8S_POD_NAMESPACE of unlabelled containers.
	K8sNamespace string
}

// JoinPlan is everything a Join must do, decided before anything is done.
type JoinPlan struct {
	Mode JoinMode
	// NetNS is where ADD runs. ScratchNS is the endpoint's scratch netns:
	// ADD runs in it in move mode (MakeScratch: made before ADD), DEL in
	// handover and move mode. Empty in direct mode.
	NetNS       string
	ScratchNS   string `json:",omitempty"`
	MakeScratch bool   `json:",omitempty"`
	// IfName is the interface name of ADD; HostIfName the name it has in
	// the host while libnetwork takes it over (empty in direct mode).
	IfName     string
	HostIfName string `json:",omitempty"`
	// Conflist is exactly what ADD runs: the main plugin's IPAM replaced
	// by static with the reserved addresses, and the default routes the
	// sandbox already has dropped. ListVersion is its cniVersion.
	Conflist    json.RawMessage
	ListVersion string
	Args        [][2]string
	Capability  map[string]any `json:",omitempty"`
	// Addresses are what ADD must configure, no more and no less.
	Addresses []StaticAddress
	// OfferGateway4 and OfferGateway6 (handover): the chain's default
	// route was dropped because the sandbox has one, but the network
	// still offers its gateway, so Docker picks the container's.
	OfferGateway4 bool `json:",omitempty"`
	OfferGateway6 bool `json:",omitempty"`
	Internal      bool `json:",omitempty"`
	// PublishAtJoin (direct mode): this network carries the container's
	// default route, so its published ports are set up at Join (Docker
	// calls ProgramExternalConnectivity only for a returned gateway).
	PublishAtJoin bool `json:",omitempty"`
	// OwnPortMap: the chain has no portmap of its own (generated);
	// docker-cni runs portmap itself to publish ports.
	OwnPortMap bool `json:",omitempty"`
	// LibnetworkMAC is the MAC libnetwork sets as it takes the interface
	// over (handover, move) where no plugin of the chain could.
	LibnetworkMAC string `json:",omitempty"`
	// SkipReclaim (handover, move): no plugin of the chain needs the
	// interface at DEL, so DEL runs without it instead of moving it back
	// into a scratch netns first.
	SkipReclaim bool `json:",omitempty"`
	// KeepName (move mode into an existing sandbox): libnetwork names the
	// interface IfName in the sandbox, as in handover.
	KeepName bool `json:",omitempty"`
}

// PlanJoin decides how an endpoint joins a sandbox: the mode, where the
// chain runs and under which interface name, the exact conflist, CNI_ARGS
// and capability args, and what is handed to libnetwork.
func PlanJoin(nw JoinNetwork, ep JoinEndpoint, sb SandboxFacts, host JoinHost) (JoinPlan, error) {
	pl, err := ParseList(nw.Conflist)
	if err != nil {
		return JoinPlan{}, err
	}
	p := JoinPlan{ListVersion: pl.CNIVersion, Internal: nw.Internal, OwnPortMap: !nw.Bound}
	if p.Addresses, err = staticAddresses(ep.Addresses, append(append([]string{}, nw.Gateways...), ep.Gateways...)); err != nil {
		return JoinPlan{}, err
	}
	list, err := pl.WithStaticIPAM(p.Addresses)
	if err != nil {
		return JoinPlan{}, err
	}
	na, err := pl.ArgsFor(nw.Args)
	if err != nil {
		return JoinPlan{}, err
	}
	if p.Args, err = CNIArgs(ep.Identity, ep.ID, host.K8sNamespace, na); err != nil {
		return JoinPlan{}, err
	}
	scratch := path.Join(host.ScratchDir, ShortID(ep.ID))
	if sb.Exists {
		err = p.inSandbox(pl, nw, ep, sb, scratch)
		if err == nil {
			list, err = WithoutDefaultRoutes(list, sb.Default4, sb.Default6)
		}
	} else {
		err = p.inScratch(nw, ep, scratch)
	}
	if err != nil {
		return JoinPlan{}, err
	}
	p.Conflist = list
	p.SkipReclaim = p.Mode != JoinDirect && !pl.DelNeedsLink()
	return p, p.setMAC(pl, nw, ep)
}

// setMAC passes the endpoint's MAC to a plugin that can set it. Without
// one, libnetwork sets it in handover and move mode; in direct mode
// nothing could, so it is refused. A chain that records the MAC it makes
// the interface with (RecordsMAC) refuses any other.
func (p *JoinPlan) setMAC(pl *ParsedList, nw JoinNetwork, ep JoinEndpoint) error {
	switch {
	case ep.MAC == "":
	case pl.RecordsMAC():
		return fmt.Errorf("--mac-address %s: plugin %s of CNI network %q records the MAC it makes the interface with, and felix points "+
			"the node's neighbour entry for the container's address at that MAC: with another one the container could not be reached. "+
			"Leave the MAC to %s (run without --mac-address)", ep.MAC, CalicoType, nw.CNINetwork, CalicoType)
	case pl.HasCapability("mac"):
		p.Capability = map[string]any{"mac": ep.MAC}
	case p.Mode == JoinDirect:
		return fmt.Errorf("--mac-address %s: CNI network %q has no plugin with the \"mac\" capability (e.g. tuning) to set it", ep.MAC, nw.CNINetwork)
	default:
		p.LibnetworkMAC = ep.MAC
	}
	return nil
}

// InterfaceMAC is the MAC the container's interface has once Docker has it:
// the one libnetwork sets, else the chain's. DEL finds the interface by it.
func (p JoinPlan) InterfaceMAC(res *current.Result) string {
	if p.LibnetworkMAC != "" {
		return p.LibnetworkMAC
	}
	return ResultMAC(res, p.IfName)
}

// staticAddresses pairs each endpoint address with the gateway of its
// subnet: the last of gateways that is in it.
func staticAddresses(cidrs, gateways []string) ([]StaticAddress, error) {
	var out []StaticAddress
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("endpoint address %q: %w", c, err)
		}
		sa := StaticAddress{Address: p}
		for _, g := range gateways {
			if gw, err := netip.ParseAddr(g); err == nil && gw.Is4() == p.Addr().Is4() && p.Masked().Contains(gw) {
				sa.Gateway = gw
			}
		}
		out = append(out, sa)
	}
	return out, nil
}

// CheckAddresses makes sure ADD configured exactly the addresses the plan
// asked for, so that docker inspect tells the truth.
func CheckAddresses(res *current.Result, p JoinPlan) error {
	got := map[netip.Addr]bool{}
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			got[a.Unmap()] = true
		}
	}
	for _, w := range p.Addresses {
		if !got[w.Address.Addr()] {
			return fmt.Errorf("the chain did not configure %s on %s (result: %v)", w.Address, p.IfName, res.IPs)
		}
	}
	return nil
}

// halvesViaGateway routes both halves of each off-link subnet through the
// chain's default gateway of its family, else the gateway of the plan's
// address in it, which itself stays on-link (as the chain has it, and as
// libnetwork wants a gateway).
func halvesViaGateway(p JoinPlan, offLink []netip.Prefix, lr LinkRoutes) []cnm.StaticRoute {
	var out []cnm.StaticRoute
	for _, sub := range offLink {
		for _, a := range p.Addresses {
			if a.Address.Masked() != sub {
				continue
			}
			via := a.Gateway
			if g := lr.gateway(sub.Addr().Is6()); g.IsValid() {
				via = g
			}
			gw := via.String()
			out = append(out, cnm.StaticRoute{Destination: netip.PrefixFrom(via, via.BitLen()).String(), RouteType: cnm.RouteConnected})
			lo := netip.PrefixFrom(sub.Addr(), sub.Bits()+1)
			_, last := PrefixBounds(lo)
			hi := netip.PrefixFrom(last.Next(), sub.Bits()+1)
			for _, half := range []netip.Prefix{lo, hi} {
				out = append(out, cnm.StaticRoute{Destination: half.String(), RouteType: cnm.RouteNextHop, NextHop: gw})
			}
		}
	}
	return out
}

// ResultMAC is the hardware address of the container interface ifName in
// a CNI result ("" when the result names none).
func ResultMAC(res *current.Result, ifName string) string {
	mac := ""
	for _, iface := range res.Interfaces {
		if iface.Name == ifName && iface.Sandbox != "" {
			mac = iface.Mac
		}
	}
	return mac
}

// OffLinkSubnets are the subnets of the plan's addresses that the chain
// did not leave on-link (onLink: the routes without gateway it left on the
// interface): routed plugins such as ptp reach even their own subnet
// through the gateway.
func OffLinkSubnets(p JoinPlan, onLink []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range p.Addresses {
		if a.Gateway.IsValid() && a.Address.Bits() < a.Address.Addr().BitLen()-1 && !slices.Contains(onLink, a.Address.Masked()) {
			out = append(out, a.Address.Masked())
		}
	}
	return out
}

// LinkRoutes are what the chain left on the container interface, read
// before the hand-over drops it: the destinations it reaches on-link (the
// routes without gateway) and the gateways of its default routes.
type LinkRoutes struct {
	OnLink             []netip.Prefix `json:",omitempty"`
	Gateway4, Gateway6 netip.Addr
}

func (lr LinkRoutes) gateway(v6 bool) netip.Addr {
	if v6 {
		return lr.Gateway6
	}
	return lr.Gateway4
}

// JoinResponse is the Join answer for a plan whose ADD gave res; lr are the
// routes the chain left on the interface. libnetwork gives the address its
// subnet's on-link route: for subnets the chain routes through the gateway
// (OffLinkSubnets), two routes through it, each half the subnet and so
// preferred, keep the chain's routing. A default route the chain made that
// its result does not report (Calico's via 169.254.1.1) is answered as the
// gateway, on-link where no address's subnet holds it, so that libnetwork
// sets it again and docker inspect shows it.
func JoinResponse(p JoinPlan, res *current.Result, lr LinkRoutes) (*cnm.JoinResponse, error) {
	if p.Mode == JoinDirect {
		return DirectJoinResponse(), nil
	}
	resp, err := MoveJoinResponse(res, p.IfName, p.HostIfName, p.Internal)
	if err != nil {
		return nil, err
	}
	resp.StaticRoutes = append(resp.StaticRoutes, halvesViaGateway(p, OffLinkSubnets(p, lr.OnLink), lr)...)
	gw4, gw6 := ResultGateways(res, p.IfName)
	if p.KeepName {
		resp.InterfaceName.DstName = p.IfName
	}
	if p.Mode == JoinHandover {
		// Back under the name the chain gave it, so DEL finds it, and in
		// libnetwork's list, so its own drivers name theirs after it.
		resp.InterfaceName.DstName = p.IfName
		if p.OfferGateway4 && resp.Gateway == "" {
			resp.Gateway = gw4
		}
		if p.OfferGateway6 && resp.GatewayIPv6 == "" {
			resp.GatewayIPv6 = gw6
		}
	}
	if !p.Internal {
		resp.Gateway = chainGateway(p, resp, resp.Gateway, lr.Gateway4)
		resp.GatewayIPv6 = chainGateway(p, resp, resp.GatewayIPv6, lr.Gateway6)
	}
	return resp, nil
}

// chainGateway is the gateway of one family: the one answered so far, else
// the chain's default route's, made reachable on-link (a connected route to
// it) when none of the plan's subnets holds it.
func chainGateway(p JoinPlan, resp *cnm.JoinResponse, answered string, chain netip.Addr) string {
	if answered != "" || !chain.IsValid() {
		return answered
	}
	for _, a := range p.Addresses {
		if a.Address.Masked().Contains(chain) {
			return chain.String()
		}
	}
	host := netip.PrefixFrom(chain, chain.BitLen()).String()
	for _, r := range resp.StaticRoutes {
		if r.Destination == host && r.RouteType == cnm.RouteConnected {
			return chain.String()
		}
	}
	resp.StaticRoutes = append(resp.StaticRoutes, cnm.StaticRoute{Destination: host, RouteType: cnm.RouteConnected})
	return chain.String()
}
