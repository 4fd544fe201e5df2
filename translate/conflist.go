package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// SupportedIPAM lists the IPAM plugins whose store docker-cni can allocate
// from on Docker's behalf: the plugin must reserve an address on its own,
// outside any container, and release it by owner ID.
var SupportedIPAM = []string{"host-local"}

// ParsedList is a conflist decoded generically, so that keys docker-cni does
// not know survive a rewrite.
type ParsedList struct {
	Name       string
	CNIVersion string
	raw        map[string]any
	plugins    []map[string]any
	// ipamIndex is the index of the first plugin with an ipam section, or -1.
	ipamIndex int
}

// ParseList decodes conflist bytes.
func ParseList(b []byte) (*ParsedList, error) {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("decode conflist: %w", err)
	}
	pl := &ParsedList{raw: raw, ipamIndex: -1}
	pl.Name, _ = raw["name"].(string)
	pl.CNIVersion, _ = raw["cniVersion"].(string)
	if pl.Name == "" {
		return nil, fmt.Errorf("decode conflist: no name")
	}
	plugins, ok := raw["plugins"].([]any)
	if !ok || len(plugins) == 0 {
		return nil, fmt.Errorf("conflist %q: no plugins", pl.Name)
	}
	for i, p := range plugins {
		m, ok := p.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("conflist %q: plugin %d is not an object", pl.Name, i)
		}
		if _, ok := m["type"].(string); !ok {
			return nil, fmt.Errorf("conflist %q: plugin %d has no type", pl.Name, i)
		}
		if _, has := m["ipam"]; has && pl.ipamIndex < 0 {
			pl.ipamIndex = i
		}
		pl.plugins = append(pl.plugins, m)
	}
	return pl, nil
}

// PluginTypes lists the plugin types of the chain, in order.
func (pl *ParsedList) PluginTypes() []string {
	var ts []string
	for _, p := range pl.plugins {
		ts = append(ts, p["type"].(string))
	}
	return ts
}

// IPAM returns the ipam section of the chain's main plugin.
func (pl *ParsedList) IPAM() (map[string]any, error) {
	if pl.ipamIndex < 0 {
		return nil, fmt.Errorf("CNI network %q: no plugin has an ipam section, so docker-cni cannot allocate addresses for it", pl.Name)
	}
	ipam, ok := pl.plugins[pl.ipamIndex]["ipam"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("CNI network %q: ipam section of plugin %q is not an object", pl.Name, pl.plugins[pl.ipamIndex]["type"])
	}
	return ipam, nil
}

// BoundPool is a Docker address pool carved out of a bound CNI network.
type BoundPool struct {
	Pool Pool
	// IPAMType is the IPAM plugin of the CNI network.
	IPAMType string
	// IPAM is the network's ipam section restricted to this pool's range,
	// to be wrapped by IPAMNetConf.
	IPAM map[string]any
}

// rangesOf returns the range sets of an ipam section, converting host-local's
// older single-range form.
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

// BoundPoolFor picks the pool of one address family from a CNI network's
// IPAM ranges: the range whose subnet is want, or the first range of the
// family when want is not valid.
func (pl *ParsedList) BoundPoolFor(v6 bool, want netip.Prefix) (BoundPool, error) {
	ipam, err := pl.IPAM()
	if err != nil {
		return BoundPool{}, err
	}
	typ, _ := ipam["type"].(string)
	supported := false
	for _, s := range SupportedIPAM {
		supported = supported || s == typ
	}
	if !supported {
		return BoundPool{}, fmt.Errorf("CNI network %q uses IPAM plugin %q; docker-cni can allocate only from %v", pl.Name, typ, SupportedIPAM)
	}
	sets, err := rangesOf(ipam)
	if err != nil {
		return BoundPool{}, fmt.Errorf("CNI network %q: %w", pl.Name, err)
	}
	family := "IPv4"
	if v6 {
		family = "IPv6"
	}
	var subnets []string
	for _, set := range sets {
		for _, r := range set {
			s, _ := r["subnet"].(string)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return BoundPool{}, fmt.Errorf("CNI network %q: range subnet %q: %w", pl.Name, s, err)
			}
			if p.Addr().Is6() != v6 {
				continue
			}
			subnets = append(subnets, p.Masked().String())
			if want.IsValid() && p.Masked() != want.Masked() {
				continue
			}
			pool := Pool{Subnet: p.Masked(), Gateway: FirstHost(p)}
			if g, ok := r["gateway"].(string); ok && g != "" {
				if pool.Gateway, err = netip.ParseAddr(g); err != nil {
					return BoundPool{}, fmt.Errorf("CNI network %q: range gateway %q: %w", pl.Name, g, err)
				}
			}
			restricted := make(map[string]any, len(ipam))
			for k, v := range ipam {
				switch k {
				case "subnet", "rangeStart", "rangeEnd", "gateway":
				default:
					restricted[k] = v
				}
			}
			restricted["ranges"] = []any{[]any{r}}
			return BoundPool{Pool: pool, IPAMType: typ, IPAM: restricted}, nil
		}
	}
	if want.IsValid() {
		return BoundPool{}, fmt.Errorf("CNI network %q has no %s range %s (its %s ranges: %v)", pl.Name, family, want, family, subnets)
	}
	return BoundPool{}, fmt.Errorf("CNI network %q has no %s range", pl.Name, family)
}

// StaticAddress is one address the container gets, with its gateway.
type StaticAddress struct {
	Address netip.Prefix
	Gateway netip.Addr
}

type staticAddr struct {
	Address string `json:"address"`
	Gateway string `json:"gateway,omitempty"`
}

// WithStaticIPAM returns the conflist with the main plugin's ipam section
// replaced by the `static` IPAM plugin carrying addrs, keeping the section's
// routes. Join uses it so that the chain configures the address Docker's IPAM
// request already reserved, instead of allocating a second one.
func (pl *ParsedList) WithStaticIPAM(addrs []StaticAddress) ([]byte, error) {
	ipam, err := pl.IPAM()
	if err != nil {
		return nil, err
	}
	static := map[string]any{"type": "static"}
	var as []staticAddr
	for _, a := range addrs {
		sa := staticAddr{Address: a.Address.String()}
		if a.Gateway.IsValid() {
			sa.Gateway = a.Gateway.String()
		}
		as = append(as, sa)
	}
	static["addresses"] = as
	if routes, ok := ipam["routes"]; ok {
		static["routes"] = routes
	}
	plugins := make([]any, len(pl.plugins))
	for i, p := range pl.plugins {
		if i != pl.ipamIndex {
			plugins[i] = p
			continue
		}
		cp := make(map[string]any, len(p))
		for k, v := range p {
			cp[k] = v
		}
		cp["ipam"] = static
		plugins[i] = cp
	}
	out := make(map[string]any, len(pl.raw))
	for k, v := range pl.raw {
		out[k] = v
	}
	out["plugins"] = plugins
	return json.Marshal(out)
}

// Subnets lists every subnet of the main plugin's IPAM ranges; none when the
// list has no ipam section or ranges.
func (pl *ParsedList) Subnets() []netip.Prefix {
	ipam, err := pl.IPAM()
	if err != nil {
		return nil
	}
	sets, err := rangesOf(ipam)
	if err != nil {
		return nil
	}
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

// WithoutDefaultRoutes drops the default routes of the given families from
// the main plugin's ipam routes. A direct-mode Join into a sandbox that
// already has a default route uses it: a second one would fail the ADD, and
// the container keeps the default route of the network it joined first.
func WithoutDefaultRoutes(list []byte, v4, v6 bool) ([]byte, error) {
	if !v4 && !v6 {
		return list, nil
	}
	pl, err := ParseList(list)
	if err != nil {
		return nil, err
	}
	ipam, err := pl.IPAM()
	if err != nil {
		return nil, err
	}
	routes, _ := ipam["routes"].([]any)
	var kept []any
	for _, r := range routes {
		m, _ := r.(map[string]any)
		dst, _ := m["dst"].(string)
		p, err := netip.ParsePrefix(dst)
		if err == nil && p.Bits() == 0 && ((p.Addr().Is4() && v4) || (p.Addr().Is6() && v6)) {
			continue
		}
		kept = append(kept, r)
	}
	ipam["routes"] = kept
	if kept == nil {
		delete(ipam, "routes")
	}
	out := make(map[string]any, len(pl.raw))
	for k, v := range pl.raw {
		out[k] = v
	}
	plugins := make([]any, len(pl.plugins))
	for i, p := range pl.plugins {
		plugins[i] = p
	}
	out["plugins"] = plugins
	return json.Marshal(out)
}

// HasCapability reports whether a plugin of the chain declares the CNI
// capability (e.g. "mac", "portMappings").
func (pl *ParsedList) HasCapability(name string) bool {
	for _, p := range pl.plugins {
		caps, _ := p["capabilities"].(map[string]any)
		if on, _ := caps[name].(bool); on {
			return true
		}
	}
	return false
}
