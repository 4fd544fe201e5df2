package sandbox

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpRetries bounds how often a link dump interrupted by changes (links
// come and go while containers start) is tried again.
const dumpRetries = 5

// hostLinkList lists the host's links, trying again when the kernel says
// the dump was interrupted by a change (its result then may be
// incomplete).
func hostLinkList() ([]netlink.Link, error) {
	var links []netlink.Link
	var err error
	for range dumpRetries {
		if links, err = netlink.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return links, err
		}
	}
	return links, err
}
