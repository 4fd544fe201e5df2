package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// perRunKeys are the top-level keys of a plugin configuration that belong
// to one run of the chain or to the plugin's place in it, not to the
// plugin's settings: an IPAM plugin run on its own gets its own values for
// them, never the main plugin's.
var perRunKeys = map[string]bool{
	"cniVersion": true, "name": true, "type": true, "ipam": true,
	"capabilities": true, "runtimeConfig": true, "args": true, "prevResult": true,
}

// IPAMRunConf is the network configuration the chain's IPAM plugin is run
// with on its own (to reserve or release one address): what the main plugin
// hands it when it delegates (the main plugin's own configuration), with
// the network's name and version, ipam as its ipam section, and without
// what belongs to one run (capabilities, runtimeConfig, args, prevResult).
// IPAM plugins read settings from the top level: calico-ipam its datastore
// (datastore_type, etcd_endpoints, kubernetes.kubeconfig) and node name
// (nodename, nodename_file), which it never reads from ipam.
func (pl *ParsedList) IPAMRunConf(ipam map[string]any) (json.RawMessage, error) {
	return ipamRunConf(pl.mainPlugin(), pl.Name, pl.CNIVersion, ipam)
}

// IPAMNetConf is the network configuration of a generated network's IPAM
// plugin run on its own: it has no main plugin settings to carry.
func IPAMNetConf(name, cniVersion string, ipam any) (json.RawMessage, error) {
	return ipamRunConf(nil, name, cniVersion, ipam)
}

// ipamRunConf carries main's settings (nil for none) into an IPAM run's
// configuration.
func ipamRunConf(main map[string]any, name, cniVersion string, ipam any) (json.RawMessage, error) {
	out := map[string]any{}
	for k, v := range main {
		if !perRunKeys[k] {
			out[k] = v
		}
	}
	typ, _ := main["type"].(string)
	if typ == "" {
		typ = "docker-cni-ipam"
	}
	out["cniVersion"], out["name"], out["type"], out["ipam"] = cniVersion, name, typ, ipam
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode IPAM configuration of CNI network %q: %w", name, err)
	}
	return b, nil
}

// WithRequestedIP adds a request for one address to an IPAM network
// configuration, in the form the IPAM plugin reads: host-local the "args"
// form (args.cni.ips), calico-ipam the CNI_ARGS key IP (returned as args, to
// be passed with IgnoreUnknown), other plugins the CNI "ips" runtime config
// (static and others read it). An invalid want leaves the configuration as
// it is and gives no args.
func WithRequestedIP(netconf []byte, ipamType string, want netip.Prefix) ([]byte, [][2]string, error) {
	if !want.IsValid() {
		return netconf, nil, nil
	}
	if ipamType == CalicoIPAMType {
		return netconf, [][2]string{{"IgnoreUnknown", "1"}, {"IP", want.Addr().String()}}, nil
	}
	var m map[string]any
	if err := json.Unmarshal(netconf, &m); err != nil {
		return nil, nil, fmt.Errorf("decode IPAM configuration: %w", err)
	}
	if ipamType == "host-local" {
		m["args"] = map[string]any{"cni": map[string]any{"ips": []string{want.Addr().String()}}}
	} else {
		m["runtimeConfig"] = map[string]any{"ips": []string{want.String()}}
	}
	b, err := json.Marshal(m)
	return b, nil, err
}

// UnusableAddress says why Docker cannot give a container address a of
// its subnet with gateway gw ("" when it can): a's the gateway, or, in an
// IPv4 subnet, its network or broadcast address. IPAM plugins that
// allocate from a larger pool than Docker's subnet, in blocks of their own
// (calico-ipam), hand such addresses out.
func UnusableAddress(subnet netip.Prefix, gw, a netip.Addr) string {
	first, last := PrefixBounds(subnet)
	switch {
	case a == gw:
		return "gateway"
	case a.Is4() && subnet.Bits() < 31 && a == first:
		return "network address"
	case a.Is4() && subnet.Bits() < 31 && a == last:
		return "broadcast address"
	}
	return ""
}
