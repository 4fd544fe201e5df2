package translate

import (
	"fmt"
	"net/netip"
)

// BindingPools are the Docker pools of a network bound to pl, one per
// address family the CNI network allocates from, with their gateways, as
// `docker-cni network create --bind` passes them to Docker (Docker insists
// on --subnet once the pods' bridge routes it). subnets the user gave pick
// among the network's ranges, and name the ranges of IPAM plugins whose
// configuration does not say them.
func BindingPools(pl *ParsedList, subnets []netip.Prefix) ([]Pool, error) {
	var out []Pool
	for _, v6 := range []bool{false, true} {
		want, given := subnetOf(subnets, v6)
		if !given && !pl.hasFamily(v6) {
			continue
		}
		bp, err := pl.BoundPoolFor(v6, want)
		if err != nil {
			return nil, err
		}
		out = append(out, bp.Pool)
	}
	if len(out) == 0 {
		if _, err := pl.BoundPoolFor(false, netip.Prefix{}); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("CNI network %q has no address range", pl.Name)
	}
	return out, nil
}

func subnetOf(subnets []netip.Prefix, v6 bool) (netip.Prefix, bool) {
	for _, s := range subnets {
		if s.Addr().Is6() == v6 {
			return s, true
		}
	}
	return netip.Prefix{}, false
}

// hasFamily reports whether the chain's IPAM has a range of the family.
func (pl *ParsedList) hasFamily(v6 bool) bool {
	for _, s := range pl.Subnets() {
		if s.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}
