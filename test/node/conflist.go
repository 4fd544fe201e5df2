package node

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// BridgeConf describes a node's pod network as flannel's host-gw backend,
// kube-router and kindnet give it: a bridge that is the pods' gateway, no
// masquerade (the other nodes see the pods' own addresses), host-local
// addresses from the node's pod CIDR and a default route.
type BridgeConf struct {
	// Network is the CNI network name.
	Network string
	// Bridge is the bridge link, made in the netns the plugins run in.
	Bridge string
	// Subnet is the node's pod CIDR.
	Subnet netip.Prefix
	// DataDir is host-local's store (give each test its own).
	DataDir string
	// Portmap adds the portmap plugin (hostPort support).
	Portmap bool
}

// Plugin configs, marshalled as they are.
type (
	conflist struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	bridgeConfig struct {
		Type      string          `json:"type"`
		Bridge    string          `json:"bridge"`
		IsGateway bool            `json:"isGateway"`
		IPMasq    bool            `json:"ipMasq"`
		IPAM      hostLocalConfig `json:"ipam"`
	}
	hostLocalConfig struct {
		Type    string                `json:"type"`
		Ranges  [][]map[string]string `json:"ranges"`
		Routes  []map[string]string   `json:"routes"`
		DataDir string                `json:"dataDir"`
	}
	portMapConfig struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
)

// BridgeConflist is c as a CNI conflist (JSON), for a CRI runtime's conf
// dir (and a Docker network bound to the same network). Pure.
func BridgeConflist(c BridgeConf) ([]byte, error) {
	if c.Network == "" || c.Bridge == "" || !c.Subnet.IsValid() || c.DataDir == "" {
		return nil, fmt.Errorf("bridge conflist %q: network, bridge, subnet and data dir are all needed", c.Network)
	}
	plugins := []any{bridgeConfig{
		Type: "bridge", Bridge: c.Bridge, IsGateway: true, IPMasq: false,
		IPAM: hostLocalConfig{
			Type:    "host-local",
			Ranges:  [][]map[string]string{{{"subnet": c.Subnet.Masked().String()}}},
			Routes:  []map[string]string{{"dst": "0.0.0.0/0"}},
			DataDir: c.DataDir,
		},
	}}
	if c.Portmap {
		plugins = append(plugins, portMapConfig{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}})
	}
	return json.MarshalIndent(conflist{CNIVersion: "1.0.0", Name: c.Network, Plugins: plugins}, "", "  ")
}
