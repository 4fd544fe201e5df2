package translate

import (
	"fmt"
	"net/netip"
	"strings"
)

// FlannelType is the plugin type of flannel's CNI plugin, which has no ipam
// of its own: it delegates (to bridge by default) with host-local over the
// node's flannel subnet.
const FlannelType = "flannel"

// BoundPool is a Docker address pool carved out of a bound CNI network.
type BoundPool struct {
	Pool Pool
	// IPAMType is the IPAM plugin of the CNI network.
	IPAMType string
	// IPAM is the ipam section reservations run with: for host-local,
	// restricted to this pool's range; for other plugins, the whole
	// section (it cannot be restricted without knowing its format).
	IPAM map[string]any
	// GatewayFree says the CNI network does not state this pool's
	// gateway: --gateway decides (else the first host).
	GatewayFree bool
}

// ipamRange is one range an ipam section allocates from.
type ipamRange struct {
	Subnet  netip.Prefix
	Gateway netip.Addr
	// raw is the host-local range entry, to restrict a section to it.
	raw map[string]any
}

// check refuses a range Docker cannot take as a pool: its gateway must lie
// in its subnet, which must hold a gateway and an address besides.
func (r ipamRange) check() error {
	if r.Subnet.Bits() > r.Subnet.Addr().BitLen()-2 {
		return fmt.Errorf("range %s is too small for a Docker pool (a gateway and an address)", r.Subnet)
	}
	if !r.Subnet.Contains(r.Gateway) {
		return fmt.Errorf("range %s: gateway %s is not in it", r.Subnet, r.Gateway)
	}
	return nil
}

// noIPAMError explains why a chain without an ipam section cannot be
// bound, naming what is missing.
func noIPAMError(pl *ParsedList) error {
	main := pl.plugins[0]
	typ, _ := main["type"].(string)
	switch {
	case agentPlugins[typ].network != "":
		return agentError(pl, typ)
	case typ == "multus" || strings.Contains(typ, "multus"):
		return fmt.Errorf("CNI network %q is multus's: it picks networks per pod from Kubernetes; bind to the network multus delegates to (its clusterNetwork or default network conflist) instead", pl.Name)
	case main["delegate"] != nil || main["delegates"] != nil:
		return fmt.Errorf("CNI network %q: its main plugin %q delegates in a way docker-cni does not know (it knows flannel's); bind to the conflist it delegates to", pl.Name, typ)
	}
	return fmt.Errorf("CNI network %q: its main plugin %q has no ipam section: it allocates addresses itself (as cilium-cni and other agent-backed plugins do), "+
		"so docker-cni cannot reserve one for Docker before the container exists; docker-cni can bind conflists whose main plugin has an ipam section it can run on its own, or flannel's", pl.Name, typ)
}

// sectionRanges reads the ranges of an ipam section by plugin type. known
// is false when the type does not say its ranges in its configuration
// (calico-ipam pools by name, unknown plugins): --subnet must then name it.
func sectionRanges(typ string, ipam map[string]any) (rs []ipamRange, known bool, err error) {
	switch typ {
	case "host-local":
		rs, err = hostLocalRanges(ipam)
		return rs, true, err
	case "static":
		rs, err = staticRanges(ipam)
		return rs, true, err
	case "whereabouts":
		rs, err = whereaboutsRanges(ipam)
		return rs, true, err
	case "calico-ipam":
		rs = calicoRanges(ipam)
		return rs, len(rs) > 0, nil
	case "dhcp":
		return nil, false, fmt.Errorf("IPAM plugin dhcp is not supported: it leases an address for the container's interface through the node's dhcp daemon, " +
			"which renews the lease on that interface; docker-cni reserves Docker's address before the interface exists, and the lease would not follow the interface into the container")
	}
	return nil, false, nil
}

func hostLocalRanges(ipam map[string]any) ([]ipamRange, error) {
	sets, err := rangesOf(ipam)
	if err != nil {
		return nil, err
	}
	var out []ipamRange
	for _, set := range sets {
		for _, r := range set {
			s, _ := r["subnet"].(string)
			if s == "usePodCidr" || s == "usePodCidrIPv6" {
				return nil, fmt.Errorf("host-local subnet %q is the node's podCIDR, which the calico plugin looks up in Kubernetes at ADD: "+
					"docker-cni cannot reserve from it (give the pool's CIDR in the conflist, or use calico-ipam)", s)
			}
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("range subnet %q: %w", s, err)
			}
			ir := ipamRange{Subnet: p.Masked(), Gateway: FirstHost(p), raw: r}
			if g, ok := r["gateway"].(string); ok && g != "" {
				if ir.Gateway, err = netip.ParseAddr(g); err != nil {
					return nil, fmt.Errorf("range gateway %q: %w", g, err)
				}
			}
			if err := ir.check(); err != nil {
				return nil, err
			}
			out = append(out, ir)
		}
	}
	return out, nil
}

// staticRanges are the subnets of the static plugin's addresses.
func staticRanges(ipam map[string]any) ([]ipamRange, error) {
	addrs, _ := ipam["addresses"].([]any)
	var out []ipamRange
	for _, a := range addrs {
		m, _ := a.(map[string]any)
		s, _ := m["address"].(string)
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("static address %q: %w", s, err)
		}
		ir := ipamRange{Subnet: p.Masked(), Gateway: FirstHost(p)}
		if g, _ := m["gateway"].(string); g != "" {
			if ir.Gateway, err = netip.ParseAddr(g); err != nil {
				return nil, fmt.Errorf("static gateway %q: %w", g, err)
			}
		}
		if err := ir.check(); err != nil {
			return nil, err
		}
		out = append(out, ir)
	}
	return out, nil
}

// whereaboutsRanges reads whereabouts' range ("10.0.0.0/24", or
// "10.0.0.10-10.0.0.50/24") and ipRanges forms.
func whereaboutsRanges(ipam map[string]any) ([]ipamRange, error) {
	var specs []string
	if s, _ := ipam["range"].(string); s != "" {
		specs = append(specs, s)
	}
	list, _ := ipam["ipRanges"].([]any)
	for _, r := range list {
		m, _ := r.(map[string]any)
		if s, _ := m["range"].(string); s != "" {
			specs = append(specs, s)
		}
	}
	var out []ipamRange
	for _, s := range specs {
		cidr := s
		if i := strings.LastIndex(s, "-"); i >= 0 {
			cidr = s[i+1:]
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("whereabouts range %q: %w", s, err)
		}
		ir := ipamRange{Subnet: p.Masked(), Gateway: FirstHost(p)}
		if g, _ := ipam["gateway"].(string); g != "" {
			if gw, err := netip.ParseAddr(g); err == nil && ir.Subnet.Contains(gw) {
				ir.Gateway = gw
			}
		}
		if err := ir.check(); err != nil {
			return nil, err
		}
		out = append(out, ir)
	}
	return out, nil
}

// calicoRanges are the CIDRs among calico-ipam's ipv4_pools and
// ipv6_pools (pools named instead are not readable here).
func calicoRanges(ipam map[string]any) []ipamRange {
	var out []ipamRange
	for _, k := range []string{"ipv4_pools", "ipv6_pools"} {
		list, _ := ipam[k].([]any)
		for _, v := range list {
			s, _ := v.(string)
			if p, err := netip.ParsePrefix(s); err == nil {
				if ir := (ipamRange{Subnet: p.Masked(), Gateway: FirstHost(p)}); ir.check() == nil {
					out = append(out, ir)
				}
			}
		}
	}
	return out
}

// BoundPoolFor picks the pool of one address family from a CNI network's
// IPAM ranges: the range whose subnet is want, or the first range of the
// family when want is not valid. For an IPAM plugin whose ranges docker-cni
// cannot read, want (--subnet) is the pool.
func (pl *ParsedList) BoundPoolFor(v6 bool, want netip.Prefix) (BoundPool, error) {
	ipam, err := pl.IPAM()
	if err != nil {
		return BoundPool{}, err
	}
	typ, _ := ipam["type"].(string)
	ranges, known, err := sectionRanges(typ, ipam)
	if err != nil {
		return BoundPool{}, fmt.Errorf("CNI network %q: %w", pl.Name, err)
	}
	if !known {
		return pl.unreadablePool(typ, ipam, v6, want)
	}
	var subnets []string
	for _, r := range ranges {
		if r.Subnet.Addr().Is6() != v6 {
			continue
		}
		subnets = append(subnets, r.Subnet.String())
		if want.IsValid() && r.Subnet != want.Masked() {
			continue
		}
		return BoundPool{Pool: Pool{Subnet: r.Subnet, Gateway: r.Gateway}, IPAMType: typ, IPAM: restrict(typ, ipam, r)}, nil
	}
	family := familyName(v6)
	if want.IsValid() {
		return BoundPool{}, fmt.Errorf("CNI network %q has no %s range %s (its %s ranges: %v)", pl.Name, family, want, family, subnets)
	}
	return BoundPool{}, fmt.Errorf("CNI network %q has no %s range", pl.Name, family)
}

// SubnetNeededError refuses a binding without --subnet to a CNI network
// whose IPAM plugin does not say its ranges in its configuration: given the
// subnet, the binding works.
type SubnetNeededError struct {
	Network, IPAMType string
	V6                bool
}

func (e *SubnetNeededError) Error() string {
	if e.IPAMType == CalicoIPAMType {
		return fmt.Sprintf("CNI network %q uses calico-ipam, which allocates from the IP pools in Calico's datastore, not from its configuration: "+
			"give the CIDR of the %s pool its containers get addresses from with --subnet (calicoctl get ippools -o wide lists them), "+
			"and reserve Docker's gateway of it (the first address, or --gateway) with a Calico IPReservation so that no pod is given it", e.Network, familyName(e.V6))
	}
	return fmt.Sprintf("CNI network %q uses IPAM plugin %q, whose address ranges docker-cni cannot read from its configuration: "+
		"give the %s subnet it allocates from with --subnet (and --gateway, if it is not the first address)", e.Network, e.IPAMType, familyName(e.V6))
}

// unreadablePool is the pool of an IPAM plugin whose ranges are not in its
// configuration: --subnet says it.
func (pl *ParsedList) unreadablePool(typ string, ipam map[string]any, v6 bool, want netip.Prefix) (BoundPool, error) {
	if !want.IsValid() {
		return BoundPool{}, &SubnetNeededError{Network: pl.Name, IPAMType: typ, V6: v6}
	}
	if want.Addr().Is6() != v6 {
		return BoundPool{}, fmt.Errorf("subnet %s is not an %s subnet", want, familyName(v6))
	}
	r := ipamRange{Subnet: want.Masked(), Gateway: FirstHost(want)}
	if err := r.check(); err != nil {
		return BoundPool{}, fmt.Errorf("CNI network %q: %w", pl.Name, err)
	}
	return BoundPool{Pool: Pool{Subnet: r.Subnet, Gateway: r.Gateway}, IPAMType: typ, IPAM: ipam, GatewayFree: true}, nil
}

// restrict narrows a host-local section to one range, so that Docker's
// pool of one family never takes an address of another; other plugins'
// sections are used whole.
func restrict(typ string, ipam map[string]any, r ipamRange) map[string]any {
	if typ != "host-local" {
		return ipam
	}
	out := make(map[string]any, len(ipam))
	for k, v := range ipam {
		switch k {
		case "subnet", "rangeStart", "rangeEnd", "gateway":
		default:
			out[k] = v
		}
	}
	out["ranges"] = []any{[]any{r.raw}}
	return out
}

func familyName(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// rangesOf returns the range sets of a host-local ipam section, converting
// its older single-range form.
func rangesOf(ipam map[string]any) ([][]map[string]any, error) {
	var out [][]map[string]any
	// host-local puts the single-range form first, then "ranges".
	if s, ok := ipam["subnet"].(string); ok && s != "" {
		r := map[string]any{"subnet": s}
		for _, k := range []string{"rangeStart", "rangeEnd", "gateway"} {
			if v, ok := ipam[k]; ok {
				r[k] = v
			}
		}
		out = append(out, []map[string]any{r})
	}
	raw, has := ipam["ranges"]
	if !has && len(out) > 0 {
		return out, nil
	}
	sets, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("ipam has no ranges")
	}
	for i, s := range sets {
		set, ok := s.([]any)
		if !ok {
			return nil, fmt.Errorf("ipam range set %d is not a list", i)
		}
		var rs []map[string]any
		for j, r := range set {
			m, ok := r.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("ipam range %d.%d is not an object", i, j)
			}
			rs = append(rs, m)
		}
		out = append(out, rs)
	}
	return out, nil
}

// Subnets lists every subnet the chain's IPAM allocates from, where its
// configuration says; none when it does not.
func (pl *ParsedList) Subnets() []netip.Prefix {
	ipam, err := pl.IPAM()
	if err != nil {
		return nil
	}
	typ, _ := ipam["type"].(string)
	if typ != "host-local" {
		ranges, _, _ := sectionRanges(typ, ipam)
		var out []netip.Prefix
		for _, r := range ranges {
			out = append(out, r.Subnet)
		}
		return out
	}
	// host-local: every parsable range, so that a generated pool never
	// overlaps one.
	sets, _ := rangesOf(ipam)
	var out []netip.Prefix
	for _, set := range sets {
		for _, r := range set {
			s, _ := r["subnet"].(string)
			if p, err := netip.ParsePrefix(s); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}
