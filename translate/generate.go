package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// DefaultCNIVersion is the spec version of generated conflists: the newest
// that the reference plugins shipped by Debian bookworm (1.1.1) accept.
const DefaultCNIVersion = "1.0.0"

// Pool is one address pool of a network as the CNI IPAM plugin sees it.
type Pool struct {
	// Subnet is the pool's CIDR.
	Subnet netip.Prefix
	// Range, if valid, is the sub-range (--ip-range) addresses come from.
	Range netip.Prefix
	// Gateway is the gateway address (no prefix length).
	Gateway netip.Addr
}

// GenerateParams are the facts a generated conflist is made from.
type GenerateParams struct {
	Name       string
	CNIVersion string
	BridgeName string
	MTU        int
	Internal   bool
	Pools      []Pool
	// DataDir is host-local's store, kept out of kubelet's default.
	DataDir string
}

type hostLocalRange struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart,omitempty"`
	RangeEnd   string `json:"rangeEnd,omitempty"`
	Gateway    string `json:"gateway,omitempty"`
}

type route struct {
	Dst string `json:"dst"`
	GW  string `json:"gw,omitempty"`
}

type hostLocalIPAM struct {
	Type    string             `json:"type"`
	Ranges  [][]hostLocalRange `json:"ranges"`
	Routes  []route            `json:"routes,omitempty"`
	DataDir string             `json:"dataDir,omitempty"`
}

type bridgeConfig struct {
	Type        string        `json:"type"`
	Bridge      string        `json:"bridge"`
	IsGateway   bool          `json:"isGateway"`
	IPMasq      bool          `json:"ipMasq"`
	HairpinMode bool          `json:"hairpinMode"`
	MTU         int           `json:"mtu,omitempty"`
	IPAM        hostLocalIPAM `json:"ipam"`
	// Capabilities: "mac", the MAC docker-cni chose for the endpoint.
	Capabilities map[string]bool `json:"capabilities,omitempty"`
}

type portMapConfig struct {
	Type         string          `json:"type"`
	Capabilities map[string]bool `json:"capabilities"`
	SNAT         *bool           `json:"snat,omitempty"`
}

type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Name       string `json:"name"`
	Plugins    []any  `json:"plugins"`
}

// GeneratedName is the CNI network name of a network docker-cni generates
// for the given first pool: stable for a subnet, so host-local's store for a
// subnet is found again after a restart.
func GeneratedName(subnet netip.Prefix) string {
	s := strings.NewReplacer(":", "-", "/", "-").Replace(subnet.Masked().String())
	return "docker-cni-" + s
}

// GeneratedBridgeName derives a bridge name from the Docker network ID, in
// the spirit of Docker's br-<id>.
func GeneratedBridgeName(networkID string) string {
	id := networkID
	if len(id) > 10 {
		id = id[:10]
	}
	return "cni-" + id
}

// HostLocalRange renders one pool as a host-local range.
func hostLocalRangeOf(p Pool) hostLocalRange {
	r := hostLocalRange{Subnet: p.Subnet.Masked().String()}
	if p.Gateway.IsValid() {
		r.Gateway = p.Gateway.String()
	}
	if p.Range.IsValid() && p.Range.Masked() != p.Subnet.Masked() {
		first, last := PrefixBounds(p.Range)
		// Never hand out the subnet's network or (IPv4) broadcast address,
		// as Docker's own IPAM does not; host-local takes the bounds as given.
		netAddr, bcast := PrefixBounds(p.Subnet)
		if first == netAddr {
			first = first.Next()
		}
		if last == bcast && last.Is4() {
			last = last.Prev()
		}
		r.RangeStart, r.RangeEnd = first.String(), last.String()
	}
	return r
}

func defaultRoutes(pools []Pool) []route {
	var rs []route
	seen4, seen6 := false, false
	for _, p := range pools {
		if p.Subnet.Addr().Is4() && !seen4 {
			rs, seen4 = append(rs, route{Dst: "0.0.0.0/0"}), true
		}
		if p.Subnet.Addr().Is6() && !seen6 {
			rs, seen6 = append(rs, route{Dst: "::/0"}), true
		}
	}
	return rs
}

// HostLocalIPAM is the ipam section docker-cni generates for pools; routes
// give the container its default route unless the network is internal.
func HostLocalIPAM(pools []Pool, internal bool, dataDir string) hostLocalIPAM {
	ipam := hostLocalIPAM{Type: "host-local", DataDir: dataDir}
	for _, p := range pools {
		ipam.Ranges = append(ipam.Ranges, []hostLocalRange{hostLocalRangeOf(p)})
	}
	if !internal {
		ipam.Routes = defaultRoutes(pools)
	}
	return ipam
}

// GenerateConflist builds the conflist of a network created without a
// binding: bridge + host-local, the bridge setting the MAC docker-cni chose
// for the endpoint (its "mac" capability), so that the chain's result,
// docker inspect and the container agree in every join mode. What the bridge plugin's ipMasq and the firewall plugin would do for
// every container (masquerade; let traffic to and between containers pass
// a FORWARD chain whose policy dockerd sets to DROP), docker-cni does once
// for the network (GeneratedRules); published ports go through portmap, run
// on its own for the containers that publish some.
func GenerateConflist(p GenerateParams) ([]byte, error) {
	if p.Name == "" || p.BridgeName == "" {
		return nil, fmt.Errorf("generate conflist: name and bridge name are required")
	}
	if len(p.Pools) == 0 {
		return nil, fmt.Errorf("generate conflist %q: no address pool", p.Name)
	}
	version := p.CNIVersion
	if version == "" {
		version = DefaultCNIVersion
	}
	br := bridgeConfig{
		Type:      "bridge",
		Bridge:    p.BridgeName,
		IsGateway: true,
		// Masquerade and forward accepts are docker-cni's, once per
		// network (GeneratedRules), not the plugins' per container.
		IPMasq:       false,
		HairpinMode:  true,
		MTU:          p.MTU,
		IPAM:         HostLocalIPAM(p.Pools, p.Internal, p.DataDir),
		Capabilities: map[string]bool{"mac": true},
	}
	list := conflist{CNIVersion: version, Name: p.Name, Plugins: []any{br}}
	// No portmap: docker-cni runs it on its own, for the containers that
	// publish ports only.
	return json.MarshalIndent(list, "", "  ")
}

// PrefixBounds returns the first and last address of a prefix.
func PrefixBounds(p netip.Prefix) (first, last netip.Addr) {
	p = p.Masked()
	first = p.Addr()
	b := first.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	last, _ = netip.AddrFromSlice(b)
	return first, last
}

// FirstHost is the first address after the network address: Docker's and
// host-local's default gateway.
func FirstHost(p netip.Prefix) netip.Addr {
	return p.Masked().Addr().Next()
}

// FreeSubnet returns the first subnet of the given size inside one of pools
// that overlaps none of taken.
func FreeSubnet(pools []netip.Prefix, bits int, taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		if pool.Bits() > bits {
			continue
		}
		for cand := netip.PrefixFrom(pool.Masked().Addr(), bits); cand.IsValid() && pool.Contains(cand.Addr()); {
			free := true
			for _, t := range taken {
				if t.Overlaps(cand) {
					free = false
					break
				}
			}
			if free {
				return cand, nil
			}
			_, last := PrefixBounds(cand)
			next := last.Next()
			if !next.IsValid() {
				break
			}
			cand = netip.PrefixFrom(next, bits)
		}
	}
	return netip.Prefix{}, fmt.Errorf("no free /%d left in the default pools %v: give --subnet", bits, pools)
}
