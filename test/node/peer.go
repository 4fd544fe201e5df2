package node

import (
	"net/netip"
	"strings"
)

// PeerAddrs are the peer addresses in `ss -tnH` output (IPv4-mapped ones
// unmapped): who a server sees its clients as. Pure.
func PeerAddrs(out string) []netip.Addr {
	var addrs []netip.Addr
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if ap, err := netip.ParseAddrPort(f[len(f)-1]); err == nil {
			addrs = append(addrs, ap.Addr().Unmap())
		}
	}
	return addrs
}
