package translate

import (
	"encoding/json"
	"path"
)

// CachedAttachment is what libcni's cache holds of an attachment ADD made:
// the exact conflist it ran and its runtime configuration.
type CachedAttachment struct {
	Conflist   json.RawMessage
	IfName     string
	NetNS      string
	Args       [][2]string
	Capability map[string]any
}

// RebuiltFacts are what is known of a running container's attachment when
// docker-cni lost its record: what the engine says (sandbox, addresses,
// MAC) and, if libcni's cache kept it, the attachment as ADD made it.
type RebuiltFacts struct {
	EndpointID string
	Addresses  []string
	Gateways   []string
	SandboxKey string
	// Cached is nil when the cache is gone (a wiped state dir).
	Cached *CachedAttachment
	// IfName is the name of the endpoint's interface in the sandbox,
	// found by its MAC ("" if not found).
	IfName string
}

// RebuiltPlan is the Join plan an attachment was made by, as far as its
// DEL needs it: the cached conflist and runtime configuration where the
// cache has them, else the network's chain with the endpoint's static
// addresses (what Join would run) in the sandbox. The mode follows from
// where ADD ran: a scratch netns is move mode, the sandbox direct or
// handover as the network says.
func RebuiltPlan(nw JoinNetwork, f RebuiltFacts, host JoinHost) (JoinPlan, error) {
	pl, err := ParseList(nw.Conflist)
	if err != nil {
		return JoinPlan{}, err
	}
	scratch := path.Join(host.ScratchDir, ShortID(f.EndpointID))
	p := JoinPlan{ListVersion: pl.CNIVersion, Internal: nw.Internal, OwnPortMap: !nw.Bound, Mode: JoinHandover, NetNS: f.SandboxKey, IfName: f.IfName}
	if p.Addresses, err = staticAddresses(f.Addresses, append(append([]string{}, nw.Gateways...), f.Gateways...)); err != nil {
		return JoinPlan{}, err
	}
	if c := f.Cached; c != nil {
		p.Conflist, p.IfName, p.NetNS, p.Args, p.Capability = c.Conflist, c.IfName, c.NetNS, c.Args, c.Capability
		if cl, err := ParseList(c.Conflist); err == nil {
			pl, p.ListVersion = cl, cl.CNIVersion
		}
	} else if p.Conflist, err = pl.WithStaticIPAM(p.Addresses); err != nil {
		return JoinPlan{}, err
	}
	if p.IfName == "" {
		p.IfName = "eth0"
	}
	switch {
	case p.NetNS == scratch:
		p.Mode = JoinMove
	case nw.Join == JoinDirect:
		p.Mode = JoinDirect
	}
	if p.Mode != JoinDirect {
		p.ScratchNS, p.HostIfName = scratch, HostIfName(f.EndpointID)
	}
	p.SkipReclaim = p.Mode != JoinDirect && !pl.DelNeedsLink()
	return p, nil
}
