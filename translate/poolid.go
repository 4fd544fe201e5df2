package translate

import (
	"net/netip"
	"strings"
)

// PoolID is what a pool ID docker-cni handed Docker says of itself: the CNI
// network whose store the pool's addresses come from and the pool's
// subnet. A bound pool's ID is "<CNI network>/<subnet>/<nonce>", a
// generated pool's "<GeneratedName(subnet)>/<nonce>". Docker keeps the ID
// and names it in every IPAM call, so a docker-cni that lost its records
// still knows which pool a call means.
type PoolID struct {
	CNINetwork string
	Subnet     netip.Prefix
	// Generated says the CNI network is one docker-cni generated.
	Generated bool
}

// generatedPrefix starts the names of generated CNI networks.
const generatedPrefix = "docker-cni-"

// ParsePoolID reads a pool ID of either form; ok is false for any other
// string.
func ParsePoolID(id string) (PoolID, bool) {
	parts := strings.Split(id, "/")
	switch len(parts) {
	case 4:
		subnet, err := netip.ParsePrefix(parts[1] + "/" + parts[2])
		if err != nil || parts[0] == "" || subnet != subnet.Masked() {
			return PoolID{}, false
		}
		return PoolID{CNINetwork: parts[0], Subnet: subnet}, true
	case 2:
		subnet, ok := generatedSubnet(parts[0])
		if !ok {
			return PoolID{}, false
		}
		return PoolID{CNINetwork: parts[0], Subnet: subnet, Generated: true}, true
	}
	return PoolID{}, false
}

// generatedSubnet inverts GeneratedName.
func generatedSubnet(name string) (netip.Prefix, bool) {
	rest, ok := strings.CutPrefix(name, generatedPrefix)
	i := strings.LastIndex(rest, "-")
	if !ok || i < 0 {
		return netip.Prefix{}, false
	}
	addr := rest[:i]
	if !strings.Contains(addr, ".") {
		addr = strings.ReplaceAll(addr, "-", ":")
	}
	p, err := netip.ParsePrefix(addr + "/" + rest[i+1:])
	if err != nil || GeneratedName(p) != name {
		return netip.Prefix{}, false
	}
	return p, true
}
