package node

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// newNetNS makes a new network namespace and bind-mounts it at path, as
// containernetworking's pkg/testutils does: on a locked OS thread that is
// thrown away afterwards (its goroutine ends without unlocking it), so no
// other goroutine ever runs in the new namespace.
func newNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make netns %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("make netns %s: %w", path, err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with us
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		errc <- unix.Mount(self, path, "none", unix.MS_BIND, "")
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("make netns %s: %w", path, err)
	}
	return nil
}

// removeNetNS unmounts and removes the netns at path, and NetNSDir when it
// is left empty. A missing or unmounted path is fine.
func removeNetNS(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	os.Remove(filepath.Dir(path)) // only when empty
	return nil
}

// deleteLink deletes the host link name (a veth: its peer and routes go
// too). A missing link is fine.
func deleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// wire makes the veth pair and sets up both ends, through a netlink handle
// bound to the node's netns (no setns in this process).
func (n *Node) wire() error {
	ns, err := netns.GetFromPath(n.NetNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", n.NetNS, err)
	}
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in netns %s: %w", n.NetNS, err)
	}
	defer in.Close()
	host, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink on the host: %w", err)
	}
	defer host.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: n.HostIf},
		PeerName:      n.NodeIf,
		PeerNamespace: netlink.NsFd(ns),
	}
	if err := host.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth %s (peer %s in %s): %w", n.HostIf, n.NodeIf, n.NetNS, err)
	}
	if err := setUp(host, n.HostIf, n.HostIP, n.Link.Bits()); err != nil {
		return err
	}
	if err := setUp(in, n.NodeIf, n.NodeIP, n.Link.Bits()); err != nil {
		return fmt.Errorf("in node: %w", err)
	}
	if err := linkUp(in, "lo"); err != nil {
		return fmt.Errorf("in node: %w", err)
	}
	def := &netlink.Route{Dst: prefixNet(netip.PrefixFrom(netip.IPv4Unspecified(), 0)), Gw: n.HostIP.AsSlice()}
	if err := in.RouteAdd(def); err != nil {
		return fmt.Errorf("in node: route default via %s: %w", n.HostIP, err)
	}
	if !n.PodSubnet.IsValid() {
		return nil // an overlay node: the overlay routes its pods
	}
	pods := &netlink.Route{Dst: prefixNet(n.PodSubnet), Gw: n.NodeIP.AsSlice()}
	if err := host.RouteAdd(pods); err != nil {
		return fmt.Errorf("route %s via %s: %w", n.PodSubnet, n.NodeIP, err)
	}
	return nil
}

// setUp gives link name the address ip/bits and sets it up.
func setUp(h *netlink.Handle, name string, ip netip.Addr, bits int) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	addr := &netlink.Addr{IPNet: prefixNet(netip.PrefixFrom(ip, bits))}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr.IPNet, name, err)
	}
	return linkUp(h, name)
}

func linkUp(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	return nil
}

// prefixNet is p as a *net.IPNet (address kept, not masked).
func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
