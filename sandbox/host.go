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
	links, err := netlink.LinkList()
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
	links, err := netlink.LinkList()
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
