package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// ParsedList is a conflist decoded generically, so that keys docker-cni does
// not know survive a rewrite.
type ParsedList struct {
	Name       string
	CNIVersion string
	raw        map[string]any
	plugins    []map[string]any
	// ipamIndex is the index of the main plugin: the first with an ipam
	// section, or the flannel plugin, or -1.
	ipamIndex int
	// flannel is true when the main plugin is flannel's, which delegates
	// with an ipam section it builds from the node's subnet file; derived
	// is that section, once WithSubnetEnv gave the file's facts.
	flannel bool
	derived map[string]any
	// origTypes are the plugin types as the conflist has them;
	// substitution names what replaced its main plugin ("" for nothing):
	// see substituteCalicoKDD.
	origTypes    []string
	substitution string
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
		typ, ok := m["type"].(string)
		if !ok {
			return nil, fmt.Errorf("conflist %q: plugin %d has no type", pl.Name, i)
		}
		if _, has := m["ipam"]; (has || typ == FlannelType) && pl.ipamIndex < 0 {
			pl.ipamIndex, pl.flannel = i, typ == FlannelType
		}
		pl.plugins = append(pl.plugins, m)
		pl.origTypes = append(pl.origTypes, typ)
	}
	pl.substituteCalicoKDD()
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

// IPAM returns the ipam section the chain's main plugin allocates with:
// its own, or, for flannel, the one flannel builds from the node's subnet
// file (WithSubnetEnv must have been given its facts).
func (pl *ParsedList) IPAM() (map[string]any, error) {
	if pl.flannel {
		if pl.derived == nil {
			return nil, fmt.Errorf("CNI network %q delegates through flannel: its subnet file was not read", pl.Name)
		}
		return pl.derived, nil
	}
	return pl.ownIPAM()
}

// ownIPAM returns the ipam section written in the main plugin (for
// flannel, the optional one it passes on to its delegate; nil if none).
func (pl *ParsedList) ownIPAM() (map[string]any, error) {
	if pl.ipamIndex < 0 {
		return nil, noIPAMError(pl)
	}
	if typ := pl.origTypes[pl.ipamIndex]; agentPlugins[typ].network != "" {
		return nil, agentError(pl, typ)
	}
	raw, has := pl.plugins[pl.ipamIndex]["ipam"]
	if !has && pl.flannel {
		return nil, nil
	}
	ipam, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("CNI network %q: ipam section of plugin %q is not an object", pl.Name, pl.plugins[pl.ipamIndex]["type"])
	}
	return ipam, nil
}

// mainPlugin is the plugin that makes the container's interface.
func (pl *ParsedList) mainPlugin() map[string]any {
	if pl.ipamIndex >= 0 {
		return pl.plugins[pl.ipamIndex]
	}
	return pl.plugins[0]
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
	ipam, err := pl.ownIPAM()
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
	pl.withoutDefaultGateway()
	ipam, err := pl.ownIPAM()
	if err != nil || ipam == nil {
		return pl.marshal(), err
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
	return pl.marshal(), nil
}

// marshal encodes the list with its plugins as they are now.
func (pl *ParsedList) marshal() []byte {
	out := make(map[string]any, len(pl.raw))
	for k, v := range pl.raw {
		out[k] = v
	}
	plugins := make([]any, len(pl.plugins))
	for i, p := range pl.plugins {
		plugins[i] = p
	}
	out["plugins"] = plugins
	b, _ := json.Marshal(out)
	return b
}

// withoutDefaultGateway turns off the main plugin's own default route
// (bridge's isDefaultGateway, also in flannel's delegate).
func (pl *ParsedList) withoutDefaultGateway() {
	main := pl.mainPlugin()
	confs := []map[string]any{main}
	if d, ok := main["delegate"].(map[string]any); ok {
		confs = append(confs, d)
	}
	for _, c := range confs {
		if on, _ := c["isDefaultGateway"].(bool); on {
			// isDefaultGateway implies isGateway in the bridge plugin.
			c["isDefaultGateway"], c["isGateway"] = false, true
		}
	}
}

// defaultGateway reports whether the main plugin (or flannel's delegate)
// installs a default route itself (bridge's isDefaultGateway).
func (pl *ParsedList) defaultGateway() bool {
	main := pl.mainPlugin()
	if on, _ := main["isDefaultGateway"].(bool); on {
		return true
	}
	d, _ := main["delegate"].(map[string]any)
	on, _ := d["isDefaultGateway"].(bool)
	return on
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

// linkFreeDel are plugins whose DEL needs nothing of the container's link
// unless they masquerade (ipMasq reads the link's addresses to remove its
// rules): they undo their work by container ID, cached result or names.
var linkFreeDel = map[string]bool{"bridge": true, "ptp": true, "tuning": true, "portmap": true, "firewall": true, "bandwidth": true, "loopback": true}

// DelNeedsLink reports whether a plugin of the chain needs the container's
// interface, in the netns ADD ran in, to undo its work at DEL.
func (pl *ParsedList) DelNeedsLink() bool {
	for _, p := range pl.plugins {
		typ, _ := p["type"].(string)
		if masq, _ := p["ipMasq"].(bool); masq || !linkFreeDel[typ] {
			return true
		}
	}
	return false
}
