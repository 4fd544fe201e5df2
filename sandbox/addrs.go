package sandbox

import (
	"net/netip"

	"github.com/vishvananda/netlink"
)

// HostAddresses lists the addresses of the host's interfaces (nil when
// they cannot be read).
func HostAddresses() []netip.Addr {
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out
}
