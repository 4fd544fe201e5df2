package compat

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Topology is what the test made for one conflist of a cell: names, links
// and addresses. Which fields count depends on the main plugin and IPAM.
type Topology struct {
	// Name is the CNI network name.
	Name string
	// Subnet and Gateway are the IPv4 network the cell uses.
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Bridge is the bridge plugin's bridge.
	Bridge string
	// Master is the parent link of macvlan, ipvlan and vlan.
	Master string
	// Device is the link host-device moves into the container.
	Device string
	// DataDir is host-local's store.
	DataDir string
	// RangeStart and RangeEnd bound host-local's range when valid.
	RangeStart, RangeEnd netip.Addr
	// Address is static IPAM's one address.
	Address netip.Addr
}

// Plugin configurations, one struct each, marshalled as they are.
type (
	netConfList struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	route struct {
		Dst string `json:"dst"`
	}
	hostLocalRange struct {
		Subnet     string `json:"subnet"`
		Gateway    string `json:"gateway,omitempty"`
		RangeStart string `json:"rangeStart,omitempty"`
		RangeEnd   string `json:"rangeEnd,omitempty"`
	}
	hostLocalIPAM struct {
		Type    string             `json:"type"`
		Ranges  [][]hostLocalRange `json:"ranges"`
		Routes  []route            `json:"routes,omitempty"`
		DataDir string             `json:"dataDir"`
	}
	staticAddress struct {
		Address string `json:"address"`
		Gateway string `json:"gateway,omitempty"`
	}
	staticIPAM struct {
		Type      string          `json:"type"`
		Addresses []staticAddress `json:"addresses"`
		Routes    []route         `json:"routes,omitempty"`
	}
	bridgeConf struct {
		Type        string `json:"type"`
		Bridge      string `json:"bridge"`
		IsGateway   bool   `json:"isGateway"`
		IPMasq      bool   `json:"ipMasq"`
		HairpinMode bool   `json:"hairpinMode"`
		IPAM        any    `json:"ipam"`
	}
	ptpConf struct {
		Type   string `json:"type"`
		IPMasq bool   `json:"ipMasq"`
		IPAM   any    `json:"ipam"`
	}
	parentConf struct { // macvlan, ipvlan
		Type   string `json:"type"`
		Master string `json:"master"`
		Mode   string `json:"mode"`
		IPAM   any    `json:"ipam"`
	}
	vlanConf struct {
		Type   string `json:"type"`
		Master string `json:"master"`
		VlanID int    `json:"vlanId"`
		IPAM   any    `json:"ipam"`
	}
	hostDeviceConf struct {
		Type   string `json:"type"`
		Device string `json:"device"`
		IPAM   any    `json:"ipam"`
	}
	capsConf struct { // portmap
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	bandwidthConf struct {
		Type         string `json:"type"`
		IngressRate  uint64 `json:"ingressRate"`
		IngressBurst uint64 `json:"ingressBurst"`
		EgressRate   uint64 `json:"egressRate"`
		EgressBurst  uint64 `json:"egressBurst"`
	}
	tuningConf struct {
		Type string `json:"type"`
		MTU  int    `json:"mtu"`
	}
	typeConf struct { // firewall, sbr
		Type string `json:"type"`
	}
)

// TuningMTU is the MTU the tuning plugin sets in tuning cells.
const TuningMTU = 1400

// BandwidthRate is the bandwidth plugin's rate (bits/s) both ways: high
// enough to slow nothing the scenario does.
const BandwidthRate = 1_000_000_000

// routed reports whether there is a gateway to route through: the one the
// bridge and ptp plugins make, or the LAN bridge the test puts host devices
// on. Only then a default route is given (and Docker publishes ports on the
// network that has the default route).
func routed(main string) bool { return main == MainBridge || main == MainPTP || main == MainHostDevice }

// Conflist is the conflist of cell c on topology t.
func Conflist(c Cell, t Topology) ([]byte, error) {
	if t.Name == "" || !t.Subnet.IsValid() {
		return nil, fmt.Errorf("conflist of %s: no name or subnet", c.Key())
	}
	var routes []route
	if routed(c.Main) {
		routes = []route{{Dst: "0.0.0.0/0"}}
	}
	var ipam any
	switch c.IPAM {
	case IPAMHostLocal:
		r := hostLocalRange{Subnet: t.Subnet.String()}
		if t.Gateway.IsValid() {
			r.Gateway = t.Gateway.String()
		}
		if t.RangeStart.IsValid() && t.RangeEnd.IsValid() {
			r.RangeStart, r.RangeEnd = t.RangeStart.String(), t.RangeEnd.String()
		}
		if t.DataDir == "" {
			return nil, fmt.Errorf("conflist of %s: host-local needs a data dir", c.Key())
		}
		ipam = hostLocalIPAM{Type: IPAMHostLocal, Ranges: [][]hostLocalRange{{r}}, Routes: routes, DataDir: t.DataDir}
	case IPAMStatic:
		if !t.Address.IsValid() || !t.Subnet.Contains(t.Address) {
			return nil, fmt.Errorf("conflist of %s: static needs an address in %s", c.Key(), t.Subnet)
		}
		a := staticAddress{Address: netip.PrefixFrom(t.Address, t.Subnet.Bits()).String()}
		if t.Gateway.IsValid() {
			a.Gateway = t.Gateway.String()
		}
		ipam = staticIPAM{Type: IPAMStatic, Addresses: []staticAddress{a}, Routes: routes}
	default:
		return nil, fmt.Errorf("conflist of %s: unknown IPAM %q", c.Key(), c.IPAM)
	}

	var main any
	switch c.Main {
	case MainBridge:
		main = bridgeConf{Type: MainBridge, Bridge: t.Bridge, IsGateway: true, HairpinMode: true, IPAM: ipam}
	case MainPTP:
		main = ptpConf{Type: MainPTP, IPAM: ipam}
	case MainMacvlan:
		main = parentConf{Type: MainMacvlan, Master: t.Master, Mode: "bridge", IPAM: ipam}
	case MainIPvlanL2, MainIPvlanL3:
		main = parentConf{Type: "ipvlan", Master: t.Master, Mode: c.Main[len("ipvlan-"):], IPAM: ipam}
	case MainVLAN:
		main = vlanConf{Type: MainVLAN, Master: t.Master, VlanID: 131, IPAM: ipam}
	case MainHostDevice:
		main = hostDeviceConf{Type: MainHostDevice, Device: t.Device, IPAM: ipam}
	default:
		return nil, fmt.Errorf("conflist of %s: unknown main plugin %q", c.Key(), c.Main)
	}
	plugins := []any{main, capsConf{Type: ChainPortmap, Capabilities: map[string]bool{"portMappings": true}}}
	switch c.Chained {
	case ChainPortmap:
	case ChainBandwidth:
		plugins = append(plugins, bandwidthConf{Type: ChainBandwidth,
			IngressRate: BandwidthRate, IngressBurst: BandwidthRate / 8, EgressRate: BandwidthRate, EgressBurst: BandwidthRate / 8})
	case ChainTuning:
		plugins = append(plugins, tuningConf{Type: ChainTuning, MTU: TuningMTU})
	case ChainFirewall, ChainSBR:
		plugins = append(plugins, typeConf{Type: c.Chained})
	default:
		return nil, fmt.Errorf("conflist of %s: unknown chained plugin %q", c.Key(), c.Chained)
	}
	return json.MarshalIndent(netConfList{CNIVersion: c.Version, Name: t.Name, Plugins: plugins}, "", "  ")
}
