package translate

import (
	"fmt"
	"slices"

	"github.com/docker-cni/docker-cni/cnm"
)

// Where a join's chain runs: in the container's netns (handover, direct)
// or in a scratch one (move).

// inSandbox plans a join into an existing sandbox netns: handover, or
// direct with -o cni.join=direct; move for a chain that adds its own
// default route where the sandbox has one.
func (p *JoinPlan) inSandbox(pl *ParsedList, nw JoinNetwork, ep JoinEndpoint, sb SandboxFacts, scratch string) error {
	p.Mode, p.NetNS, p.IfName = JoinHandover, sb.Key, NextIfName(sb.Links)
	if ep.IfName != "" {
		if slices.Contains(sb.Links, ep.IfName) {
			return fmt.Errorf("%s=%s: the container already has an interface of that name", cnm.OptIfname, ep.IfName)
		}
		p.IfName = ep.IfName
	}
	if clash := ownRouteClash(pl, p.Addresses, sb); clash != "" {
		if nw.Join == JoinDirect {
			return fmt.Errorf("-o %s=%s: plugin %s adds its own %s default route, and the container has one already "+
				"(from a network it joined before): start it on this network (docker run --network), or recreate the network without the option",
				OptJoin, JoinDirect, CalicoType, clash)
		}
		// The chain runs where no default route is in its way, and
		// libnetwork takes the interface over, under the same name.
		p.Mode, p.NetNS, p.ScratchNS, p.MakeScratch, p.KeepName = JoinMove, scratch, scratch, true, true
		p.HostIfName = HostIfName(ep.ID)
		return nil
	}
	routes4 := !nw.Internal && pl.HasDefaultRoute(false)
	routes6 := !nw.Internal && pl.HasDefaultRoute(true)
	if nw.Join == JoinDirect {
		// The chain must not add a second default route; the container
		// keeps the one of the network it joined first.
		p.Mode = JoinDirect
		p.PublishAtJoin = !sb.Default4 && routes4
		return nil
	}
	// DEL runs in a scratch netns, made when needed: the interface may be
	// in the host by then (libnetwork moves it out at Leave) or the
	// sandbox gone. libnetwork sets the default route from the gateway
	// Join returns, so the chain's is dropped where the sandbox has one.
	p.ScratchNS, p.HostIfName = scratch, HostIfName(ep.ID)
	p.OfferGateway4, p.OfferGateway6 = sb.Default4 && routes4, sb.Default6 && routes6
	return nil
}

// ownRouteClash names the family ("IPv4", "IPv6") of a default route the
// chain's main plugin adds on its own (OwnDefaultRoutes) where the sandbox
// has one already; "" when there is none.
func ownRouteClash(pl *ParsedList, addrs []StaticAddress, sb SandboxFacts) string {
	if !pl.OwnDefaultRoutes() {
		return ""
	}
	for _, a := range addrs {
		if v6 := a.Address.Addr().Is6(); (v6 && sb.Default6) || (!v6 && sb.Default4) {
			return familyName(v6)
		}
	}
	return ""
}

// inScratch plans a move-mode join: the sandbox is made after Join, so
// the chain runs in a scratch netns and libnetwork moves the interface.
func (p *JoinPlan) inScratch(nw JoinNetwork, ep JoinEndpoint, scratch string) error {
	if nw.Join == JoinDirect {
		return fmt.Errorf("-o %s=%s: this engine makes the container's netns after Join (Docker 20.10 and older), "+
			"so the chain cannot run in it; recreate the network without the option", OptJoin, JoinDirect)
	}
	if ep.IfName != "" {
		return fmt.Errorf("%s=%s: this engine names the container's interfaces itself (Docker 20.10 and older)", cnm.OptIfname, ep.IfName)
	}
	p.Mode, p.NetNS, p.ScratchNS, p.MakeScratch = JoinMove, scratch, scratch, true
	p.IfName, p.HostIfName = "eth0", HostIfName(ep.ID)
	return nil
}
