package sandbox

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"

	"github.com/docker-cni/docker-cni/translate"
)

// DefaultRoutes reports whether the netns at nsPath has an IPv4 and an IPv6
// default route.
func DefaultRoutes(nsPath string) (v4, v6 bool, err error) {
	err = withHandle(nsPath, func(h *netlink.Handle) error {
		for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
			routes, err := h.RouteList(nil, fam)
			if err != nil {
				return err
			}
			for _, r := range routes {
				if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
					if fam == netlink.FAMILY_V4 {
						v4 = true
					} else {
						v6 = true
					}
				}
			}
		}
		return nil
	})
	return v4, v6, err
}

func isZeroMask(m net.IPMask) bool {
	ones, _ := m.Size()
	return ones == 0
}

func (Ops) DefaultRoutes(p string) (bool, bool, error) { return DefaultRoutes(p) }

// LinkRoutes reads the routes on link ifName in the netns at nsPath: the
// destinations of the routes without a gateway (the kernel's connected
// routes among them), what the link reaches directly, and the gateways of
// its default routes.
func LinkRoutes(nsPath, ifName string) (translate.LinkRoutes, error) {
	var out translate.LinkRoutes
	err := withHandle(nsPath, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", ifName, nsPath, err)
		}
		routes, err := h.RouteList(link, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if len(r.MultiPath) > 0 {
				continue
			}
			if r.Dst == nil || r.Dst.IP.IsUnspecified() && isZeroMask(r.Dst.Mask) {
				if gw, ok := netip.AddrFromSlice(r.Gw); ok && gw.Unmap().Is4() {
					out.Gateway4 = gw.Unmap()
				} else if ok {
					out.Gateway6 = gw
				}
				continue
			}
			if p, ok := prefixOf(r.Dst); ok && r.Gw == nil {
				out.OnLink = append(out.OnLink, p)
			}
		}
		return nil
	})
	return out, err
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), true
}

func (Ops) LinkRoutes(p, ifName string) (translate.LinkRoutes, error) { return LinkRoutes(p, ifName) }
