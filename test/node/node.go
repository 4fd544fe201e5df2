// Package node makes extra Kubernetes-style nodes on this machine for
// end-to-end tests: a node is a network namespace joined to the host by a
// veth pair, routed the way flannel's host-gw backend, kube-router and
// kindnet route: one route per remote node, "<its pod CIDR> via <its IP>".
// Node 1 is the host itself (its pods come from cri.Start, its Docker
// containers from docker-cni); each Node is another one, whose pods come
// from a private containerd running inside the node's netns (StartCRI), so
// that its CNI plugins make the node's bridge and the pods' veths there, as
// a CRI runtime on a real node does.
//
// Use (as root):
//
//	n, err := node.Add(ctx, "e2en2", netip.MustParsePrefix("10.231.240.0/30"), netip.MustParsePrefix("10.231.242.0/24"))
//	t.Cleanup(func() { n.Remove(context.Background()) })
//	conf, _ := node.BridgeConflist(node.BridgeConf{Network: "e2en2", Bridge: "e2en2br0", Subnet: n.PodSubnet, DataDir: dir + "/ipam"})
//	// write conf into confDir, then:
//	rt, err := n.StartCRI(ctx, dir+"/containerd", confDir, "") // "": /usr/lib/cni
//	t.Cleanup(func() { rt.Stop() }) // registered after Remove: runs before it
//	pod, err := rt.RunPod(ctx, "p2", "default", nil) // pod.IP in n.PodSubnet
//
// Node 1's pods or containers reach pod.IP through the host route Add made;
// the node reaches node 1's pods (and the host) through its default route
// via HostIP. Node 1's own pod network must route its pods to the host
// (isGateway, a route to the other nodes' pod CIDRs or a default route) and
// must not masquerade, or the remote side sees the host's address.
//
// A node with no pod CIDR (AddOverlay) gets no host route: an overlay such
// as flannel's vxlan, run by the test on both ends of the link, routes its
// pods. A node may also get a mount namespace of its own (OwnMounts), for
// daemons that must not see some of the host's paths (a second dockerd and
// docker-cni, each finding only its own plugin socket).
//
// It is test infrastructure and needs root. It must not touch anything it
// did not make: names start with one of namePrefixes and addresses lie in
// one of Ranges.
// It never changes the host's FORWARD policy (SetForwardPolicy is there
// for tests that want DROP as a premise); it inserts commented ACCEPT rules
// for its own subnets instead, and sets the host's ip_forward to 1 while
// nodes exist (back to 0 after the last Remove when it was 0). Remove
// undoes everything Add did; after a crash, Add with the same name first
// removes what an earlier run left.
package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker-cni/docker-cni/test/cri"
)

// Range holds the addresses of the host-gw nodes of the suite (their links
// and pods).
var Range = netip.MustParsePrefix("10.231.240.0/22")

// OverlayRange holds the addresses of the nodes of the flannel tests:
// 10.250.0.0/16 is flannel's network (the nodes' leases), 10.251.0.0/16
// the links between the nodes (flanneld's public addresses).
var OverlayRange = netip.MustParsePrefix("10.250.0.0/15")

// Ranges are where a node's addresses may lie.
var Ranges = []netip.Prefix{Range, OverlayRange}

// NetNSDir is where nodes' netns are bind-mounted (not /var/run/netns).
const NetNSDir = "/run/e2en-netns"

// namePrefix starts the names of the host-gw nodes; namePrefixes are every
// prefix a node's name may start with ("e2efl": the flannel tests').
const namePrefix = "e2en"

var namePrefixes = []string{namePrefix, "e2efl"}

// execTimeout bounds Exec when the caller's context has no sooner deadline.
const execTimeout = time.Minute

// Node is a network namespace routed as a Kubernetes node beside the host.
type Node struct {
	// Name names the node, its netns file and (with suffixes) its links.
	Name string
	// NetNS is the path of the node's bind-mounted network namespace.
	NetNS string
	// HostIf and NodeIf are the veth ends on the host and in the node.
	HostIf, NodeIf string
	// HostIP and NodeIP are the ends' addresses on Link.
	HostIP, NodeIP netip.Addr
	// Link is the point-to-point subnet between host and node.
	Link netip.Prefix
	// PodSubnet is the node's pod CIDR, routed on the host via NodeIP
	// (not valid for an overlay node: the overlay routes its pods).
	PodSubnet netip.Prefix
	// MountNS is the path of the node's own mount namespace, once
	// OwnMounts made one ("" until then: the host's).
	MountNS string

	holdsForward bool
}

// Add makes node name: a netns under NetNSDir with lo up and ip_forward=1,
// a veth pair host<->node on link (host end HostIP = link's first address,
// node end NodeIP = its second), a default route in the node via HostIP,
// the host route podSubnet via NodeIP, and FORWARD ACCEPT rules on the host
// for link and podSubnet. On failure nothing is left.
func Add(ctx context.Context, name string, link, podSubnet netip.Prefix) (*Node, error) {
	if !podSubnet.IsValid() {
		return nil, fmt.Errorf("add node %s: no pod subnet (AddOverlay makes a node without one)", name)
	}
	return add(ctx, name, link, podSubnet)
}

// AddOverlay makes node name as Add does, without a pod CIDR: no host route
// and no FORWARD rules for pods; an overlay the test runs on the host and
// in the node (flanneld) routes them.
func AddOverlay(ctx context.Context, name string, link netip.Prefix) (*Node, error) {
	return add(ctx, name, link, netip.Prefix{})
}

func add(ctx context.Context, name string, link, podSubnet netip.Prefix) (n *Node, retErr error) {
	n, err := newNode(name, link, podSubnet)
	if err != nil {
		return nil, err
	}
	if err := n.Remove(ctx); err != nil { // an earlier run's leftovers
		return nil, fmt.Errorf("add node %s: clean up an earlier run: %w", name, err)
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, n.Remove(context.WithoutCancel(ctx)))
		}
	}()
	if err := holdForward(); err != nil {
		return nil, fmt.Errorf("add node %s: %w", name, err)
	}
	n.holdsForward = true
	if err := newNetNS(n.NetNS); err != nil {
		return nil, fmt.Errorf("add node %s: %w", name, err)
	}
	if err := n.wire(); err != nil {
		return nil, fmt.Errorf("add node %s: %w", name, err)
	}
	if _, err := n.Exec(ctx, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return nil, fmt.Errorf("add node %s: %w", name, err)
	}
	if err := acceptForward(ctx, n.rules()); err != nil {
		return nil, fmt.Errorf("add node %s: %w", name, err)
	}
	return n, nil
}

// newNode checks the names and addresses and derives the rest; an invalid
// podSubnet makes an overlay node. Pure.
func newNode(name string, link, podSubnet netip.Prefix) (*Node, error) {
	switch {
	case !validName(name):
		return nil, fmt.Errorf("add node %q: the name must start with one of %q and have at most 14 characters", name, namePrefixes)
	case !link.Addr().Is4() || link.Bits() > 30 || !within(link):
		return nil, fmt.Errorf("add node %s: link %s: want an IPv4 prefix of /30 or wider within one of %s", name, link, Ranges)
	case podSubnet.IsValid() && (!podSubnet.Addr().Is4() || !within(podSubnet) || podSubnet.Overlaps(link)):
		return nil, fmt.Errorf("add node %s: pod subnet %s: want an IPv4 prefix within one of %s apart from the link %s", name, podSubnet, Ranges, link)
	}
	link = link.Masked()
	host := link.Addr().Next()
	return &Node{
		Name: name, NetNS: filepath.Join(NetNSDir, name),
		HostIf: name + "h", NodeIf: name + "n",
		HostIP: host, NodeIP: host.Next(),
		Link: link, PodSubnet: podSubnet.Masked(),
	}, nil
}

func validName(name string) bool {
	if len(name) > 14 || strings.ContainsAny(name, "/ ") {
		return false
	}
	for _, p := range namePrefixes {
		if strings.HasPrefix(name, p) && len(name) > len(p) {
			return true
		}
	}
	return false
}

// within reports whether p lies in one of Ranges.
func within(p netip.Prefix) bool {
	for _, r := range Ranges {
		if p.Bits() >= r.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Remove removes everything Add made: the FORWARD rules, the veth pair
// (with the host route), the netns mount, its own mount namespace, and its
// hold on ip_forward. It is safe to repeat. Stop the node's CRI runtime and
// daemons first: processes still in the netns keep it (and the bridge in
// it) alive.
func (n *Node) Remove(ctx context.Context) error {
	var errs []error
	if err := removeMountNS(mountNSPath(n.Name)); err != nil {
		errs = append(errs, err)
	}
	n.MountNS = ""
	if err := dropForward(ctx, n.rules()); err != nil {
		errs = append(errs, err)
	}
	if err := deleteLink(n.HostIf); err != nil {
		errs = append(errs, err)
	}
	if err := removeNetNS(n.NetNS); err != nil {
		errs = append(errs, err)
	}
	if n.holdsForward {
		if err := releaseForward(); err != nil {
			errs = append(errs, err)
		}
		n.holdsForward = false
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove node %s: %w", n.Name, err)
	}
	return nil
}

// Exec runs a command in the node's netns (and its own mount namespace,
// if it has one; the host's other namespaces) and returns its combined
// output, trimmed.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	cmd := n.CommandContext(ctx, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("in node %s: %s: %w: %s", n.Name, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// Command is a command to run in the node's namespaces (see Exec), for a
// daemon: nsenter execs it, so the process started is the daemon itself.
// The caller sets its environment, output and process attributes.
func (n *Node) Command(args ...string) *exec.Cmd {
	return exec.Command("nsenter", n.nsenterArgs(args)...)
}

// CommandContext is Command bound to ctx.
func (n *Node) CommandContext(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", n.nsenterArgs(args)...)
}

func (n *Node) nsenterArgs(args []string) []string {
	ns := []string{"--net=" + n.NetNS}
	if n.MountNS != "" {
		ns = append(ns, "--mount="+n.MountNS)
	}
	return append(append(ns, "--"), args...)
}

// ExecIn runs a command in the network namespace at path (a node's, or a
// pod's: Pod.NetNS) with nsenter, with only PATH in its environment (so no
// proxy variable applies), and returns its combined output, trimmed.
func ExecIn(ctx context.Context, netns string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		return s, fmt.Errorf("in netns %s: %s: %w: %s", netns, strings.Join(args, " "), err, s)
	}
	return s, nil
}

// StartCRI starts a private containerd inside the node's netns with CNI
// confs from confDir and plugins from cniBinDir ("" for /usr/lib/cni; see
// cri.StartWith): its pods are the node's pods.
func (n *Node) StartCRI(ctx context.Context, workDir, confDir, cniBinDir string) (*cri.Runtime, error) {
	rt, err := cri.StartWith(ctx, workDir, confDir, cri.StartOpts{NetNS: n.NetNS, CNIBinDir: cniBinDir})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", n.Name, err)
	}
	return rt, nil
}
