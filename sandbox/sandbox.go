// Package sandbox does what docker-cni must do to network namespaces itself:
// tell whether a sandbox netns exists, make and remove scratch netns, list
// links in a netns, and move a link from a scratch netns to the host.
//
// It never calls setns on a thread the Go runtime may reuse: netlink work in
// another netns goes through a handle bound to that netns, and a new netns is
// made on a locked OS thread that is thrown away afterwards.
package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/docker-cni/docker-cni/translate"
)

// IsNetNS reports whether path is a mounted network namespace (nsfs).
func IsNetNS(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Create makes a new network namespace bind-mounted at path. The loopback
// link is brought up, as a container runtime would.
func Create(path string) (retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns file %s: %w", path, err)
	}
	f.Close()
	defer func() {
		if retErr != nil {
			os.Remove(path)
		}
	}()
	errc := make(chan error, 1)
	go func() {
		// The thread that unshares is never unlocked: when this goroutine
		// returns, the runtime terminates the thread instead of reusing it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount netns at %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return err
	}
	return withHandle(path, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.LinkSetUp(lo)
	})
}

// Remove unmounts and deletes a netns made by Create. A missing one is not an
// error.
func Remove(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

func withHandle(nsPath string, fn func(*netlink.Handle) error) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle in %s: %w", nsPath, err)
	}
	defer h.Close()
	return fn(h)
}

// LinkNames lists the names of the links in the netns at nsPath.
func LinkNames(nsPath string) ([]string, error) {
	var names []string
	err := withHandle(nsPath, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			names = append(names, l.Attrs().Name)
		}
		return nil
	})
	return names, err
}

// LinkNameByMAC is the name of the link with MAC mac in the netns at
// nsPath ("" when there is none).
func LinkNameByMAC(nsPath, mac string) (string, error) {
	var name string
	err := withHandle(nsPath, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if strings.EqualFold(l.Attrs().HardwareAddr.String(), mac) {
				name = l.Attrs().Name
				return nil
			}
		}
		return nil
	})
	return name, err
}

// MoveToHost renames link ifName of the netns at nsPath to newName, marks
// it with alias (the link keeps it wherever it moves) unless the chain gave
// it one, and moves it into the host netns (the daemon's), where libnetwork
// will pick it up. Moving drops the link's addresses and routes.
func MoveToHost(nsPath, ifName, newName, alias string) error {
	host, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		return fmt.Errorf("open host netns: %w", err)
	}
	defer host.Close()
	return withHandle(nsPath, func(h *netlink.Handle) error {
		link, err := h.LinkByName(ifName)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", ifName, nsPath, err)
		}
		if err := h.LinkSetDown(link); err != nil {
			return fmt.Errorf("set %s down: %w", ifName, err)
		}
		if err := h.LinkSetName(link, newName); err != nil {
			return fmt.Errorf("rename %s to %s: %w", ifName, newName, err)
		}
		// A link the chain gave an alias keeps it: plugins keep state
		// there (host-device: the device's own name, to restore at DEL).
		// It is then not marked, and no sweep ever removes it.
		if link.Attrs().Alias == "" {
			if err := h.LinkSetAlias(link, alias); err != nil {
				return fmt.Errorf("mark %s: %w", newName, err)
			}
		}
		if err := h.LinkSetNsFd(link, int(host)); err != nil {
			return fmt.Errorf("move %s to the host netns: %w", newName, err)
		}
		return nil
	})
}

// HostLinkExists reports whether the host netns has a link of that name.
func HostLinkExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// DeleteHostLink deletes a link of the host netns by name; a missing link is
// not an error.
func DeleteHostLink(name string) error {
	if name == "" {
		return nil
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("find link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// Reclaim finds the link with hardware address mac in the netns at fromNS
// and moves it into the netns at toNS, named newName, carrying addrs. It
// reports whether such a link was found. Move-mode DEL uses it to give the
// chain back the interface it made, under the name and with the addresses
// it made it with, since plugins read those to undo their work.
func Reclaim(fromNS, mac, toNS, newName string, addrs []netip.Prefix) (bool, error) {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return false, fmt.Errorf("reclaim link: mac %q: %w", mac, err)
	}
	to, err := netns.GetFromPath(toNS)
	if err != nil {
		return false, fmt.Errorf("open netns %s: %w", toNS, err)
	}
	defer to.Close()
	found := false
	err = withHandle(fromNS, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if bytes.Equal(l.Attrs().HardwareAddr, hw) {
				found = true
				if err := h.LinkSetDown(l); err != nil {
					return err
				}
				return h.LinkSetNsFd(l, int(to))
			}
		}
		return nil
	})
	if err != nil || !found {
		return found, err
	}
	return true, withHandle(toNS, func(h *netlink.Handle) error {
		links, err := h.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if !bytes.Equal(l.Attrs().HardwareAddr, hw) {
				continue
			}
			if err := h.LinkSetName(l, newName); err != nil {
				return fmt.Errorf("rename reclaimed link to %s: %w", newName, err)
			}
			for _, a := range addrs {
				ipn := &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}
				if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil && !errors.Is(err, unix.EEXIST) {
					return fmt.Errorf("address %s on reclaimed link: %w", a, err)
				}
			}
			return nil
		}
		return fmt.Errorf("reclaimed link %s vanished from %s", mac, toNS)
	})
}

// Ops is package sandbox as a value, for callers that take an interface.
type Ops struct{}

func (Ops) IsNetNS(p string) bool                       { return IsNetNS(p) }
func (Ops) Create(p string) error                       { return Create(p) }
func (Ops) Remove(p string) error                       { return Remove(p) }
func (Ops) LinkNames(p string) ([]string, error)        { return LinkNames(p) }
func (Ops) LinkNameByMAC(p, mac string) (string, error) { return LinkNameByMAC(p, mac) }
func (Ops) MoveToHost(p, i, n, a string) error          { return MoveToHost(p, i, n, a) }
func (Ops) DeleteHostLink(n string) error               { return DeleteHostLink(n) }
func (Ops) HostLinkExists(n string) bool                { return HostLinkExists(n) }
func (Ops) Reclaim(from, mac, to, name string, addrs []netip.Prefix) (bool, error) {
	return Reclaim(from, mac, to, name, addrs)
}

// HostPortFree checks a port choice of translate.PlanPorts.
func (Ops) HostPortFree(k translate.PortKey) bool { return HostPortFree(k.Proto, k.HostIP, k.Port) }

// HostPortFree reports whether proto port on hostIP (all addresses when
// empty) can be bound in the host netns right now.
func HostPortFree(proto, hostIP string, port int) bool {
	addr := net.JoinHostPort(hostIP, fmt.Sprint(port))
	switch proto {
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	case "sctp":
		// No listener check without an SCTP socket; portmap's rules decide.
		return true
	default:
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
}
