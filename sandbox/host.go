package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vishvananda/netlink"
)

// HostLinks lists the names of the host netns's links that start with
// prefix and carry alias.
func HostLinks(prefix, alias string) ([]string, error) {
	links, err := hostLinkList()
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	var out []string
	for _, l := range links {
		if name := l.Attrs().Name; strings.HasPrefix(name, prefix) && l.Attrs().Alias == alias {
			out = append(out, name)
		}
	}
	return out, nil
}

// HostLinkIndex is the index of the host link name, 0 when there is none.
func HostLinkIndex(name string) int {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return 0
	}
	return l.Attrs().Index
}

// DeleteHostLinkIndex deletes host link index if it is still named name
// (else it is gone, or another link got its index: nothing to do).
func DeleteHostLinkIndex(name string, index int) error {
	l, err := netlink.LinkByIndex(index)
	if err != nil || l.Attrs().Name != name {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

func (Ops) HostLinkIndex(name string) int                { return HostLinkIndex(name) }
func (Ops) DeleteHostLinkIndex(name string, i int) error { return DeleteHostLinkIndex(name, i) }

// Entries lists the names in dir (a dir of scratch netns); a missing dir
// has none.
func Entries(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out, nil
}

func (Ops) HostLinks(prefix, alias string) ([]string, error) { return HostLinks(prefix, alias) }
func (Ops) Entries(dir string) ([]string, error)             { return Entries(dir) }

// BridgePorts lists the names of the host links attached to bridge (none
// when it does not exist).
func BridgePorts(bridge string) ([]string, error) {
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil, nil
		}
		return nil, fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	links, err := hostLinkList()
	if err != nil {
		return nil, fmt.Errorf("list host links: %w", err)
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

func (Ops) BridgePorts(bridge string) ([]string, error) { return BridgePorts(bridge) }
