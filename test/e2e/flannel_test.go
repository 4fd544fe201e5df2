package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/test/node"
	"github.com/docker-cni/docker-cni/test/overlay"
	"github.com/vishvananda/netlink"
)

// The real flannel overlay of the suite: etcd on the host, flanneld with
// its vxlan backend and --ip-masq on the host (node 1) and on node 2 (a
// netns), each writing its lease to a subnet file of its own. Addresses lie
// in node.OverlayRange: flannel's network 10.250.0.0/16, the link between
// the nodes 10.251.0.0/30 (10.251.0.1 on the host: etcd's and flanneld's
// address there; 10.251.0.2 in node 2).
var (
	flannelNet = overlay.Network{Network: netip.MustParsePrefix("10.250.0.0/16"), SubnetLen: 24, VNI: 1}
	flannelLnk = netip.MustParsePrefix("10.251.0.0/30")
)

const (
	// flannelRun holds the daemons' pid files, for the next run when this
	// one is killed.
	flannelRun  = "/run/e2efl"
	flannelNode = "e2efl2"
	// flannelPrefix is flannel's default: the suite's etcd is its own.
	flannelPrefix = "/coreos.com/network"
	// etcd's ports, on loopback and on the link's host end.
	etcdClientPort, etcdPeerPort = 22379, 22380
)

// flannelCluster is the overlay between the host and node 2.
type flannelCluster struct {
	etcd     *overlay.Etcd
	node     *node.Node
	fl1, fl2 *overlay.Flanneld
}

// startFlannel adds node 2, runs etcd, has configure put flannel's network
// config there, and runs both flanneld, with their files under dir; the
// cleanups stop them and remove what flanneld left on the host. It waits
// until each node routes the other's lease over the vxlan link.
func startFlannel(t *testing.T, dir string, configure func(*overlay.Etcd)) *flannelCluster {
	t.Helper()
	ctx := t.Context()
	for _, d := range []struct{ file, comm string }{ // a killed run's leftovers
		{"flanneld-node1.pid", "flanneld"}, {"flanneld-node2.pid", "flanneld"}, {"etcd.pid", "etcd"}} {
		if pid, err := overlay.StopStale(filepath.Join(flannelRun, d.file), d.comm); err != nil || pid != 0 {
			t.Logf("stopped the %s (pid %d) an earlier run left: %v", d.comm, pid, err)
		}
	}
	if err := overlay.CleanHost(flannelNet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := overlay.CleanHost(flannelNet); err != nil {
			t.Errorf("clean up flannel on the host: %v", err)
		}
		os.Remove(flannelRun) // when empty
	})
	bin, err := run(ctx, "bash", filepath.Join(s.repo, "test", "engines", "flannel.sh"), "build")
	if err != nil {
		t.Fatalf("build flanneld: %v\n%s", err, bin)
	}
	flanneld := filepath.Join(lastLine(bin), "flanneld")
	c := &flannelCluster{}
	if c.node, err = node.AddOverlay(ctx, flannelNode, flannelLnk); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.node.Remove(context.Background()); err != nil {
			t.Errorf("remove node 2: %v", err)
		}
	})
	lo := netip.MustParseAddr("127.0.0.1")
	if c.etcd, err = overlay.StartEtcd(ctx, filepath.Join(dir, "etcd"), filepath.Join(flannelRun, "etcd.pid"),
		[]netip.Addr{lo, c.node.HostIP}, etcdClientPort, etcdPeerPort); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.etcd.Stop() })
	configure(c.etcd)
	if t.Failed() {
		t.FailNow()
	}
	c.fl1 = c.flanneld(dir, "node1", c.etcd.ClientURLs[0], c.node.HostIf, flanneld)
	c.fl2 = c.flanneld(dir, "node2", c.etcd.ClientURLs[1], c.node.NodeIf, flanneld)
	c.fl2.Command = c.node.Command
	for _, f := range []*overlay.Flanneld{c.fl1, c.fl2} {
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				logFileTail(t, f.Log, 30)
			}
			f.Stop()
		})
	}
	c.waitRoutes(t)
	return c
}

// putFlannelNet puts flannelNet as flannel's network config.
func putFlannelNet(t *testing.T) func(*overlay.Etcd) {
	return func(e *overlay.Etcd) {
		if err := e.Put(t.Context(), flannelPrefix+"/config", flannelNet.JSON()); err != nil {
			t.Error(err)
		}
	}
}

func (c *flannelCluster) flanneld(dir, name, endpoint, iface, bin string) *overlay.Flanneld {
	d := filepath.Join(dir, name)
	os.MkdirAll(d, 0o755)
	return &overlay.Flanneld{Bin: bin, Endpoints: endpoint, Prefix: flannelPrefix, Iface: iface,
		SubnetFile: filepath.Join(d, "subnet.env"), Log: filepath.Join(d, "flanneld.log"),
		PIDFile: filepath.Join(flannelRun, "flanneld-"+name+".pid")}
}

// leases are the nodes' subnets, from their subnet files.
func (c *flannelCluster) leases(t *testing.T) (node1, node2 netip.Prefix) {
	t.Helper()
	var err error
	if node1, err = c.fl1.Subnet(); err != nil {
		t.Fatal(err)
	}
	if node2, err = c.fl2.Subnet(); err != nil {
		t.Fatal(err)
	}
	return node1, node2
}

// waitRoutes waits until the host routes node 2's lease over the vxlan
// link and node 2 the host's: what flanneld does once it sees the other
// node's lease in etcd.
func (c *flannelCluster) waitRoutes(t *testing.T) {
	t.Helper()
	l1, l2 := c.leases(t)
	err := eventually(t, func() error {
		if !hostRoutes(l2, flannelNet.Link()) {
			return fmt.Errorf("the host has no route to node 2's lease %s over %s", l2, flannelNet.Link())
		}
		out, err := c.node.Exec(t.Context(), "ip", "-4", "route", "show", l1.String())
		if err == nil && !strings.Contains(out, "dev "+flannelNet.Link()) {
			err = fmt.Errorf("node 2 has no route to the host's lease %s over %s: %q", l1, flannelNet.Link(), out)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hostRoutes reports whether the host routes subnet over link.
func hostRoutes(subnet netip.Prefix, link string) bool {
	l, err := netlink.LinkByName(link)
	if err != nil {
		return false
	}
	routes, err := netlink.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == subnet.String() {
			return true
		}
	}
	return false
}

// lastLine is the last non-empty line of out (a script's answer after its
// log lines).
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// logFileTail logs the last n lines of a log file.
func logFileTail(t *testing.T, file string, n int) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Logf("%s: %v", file, err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("%s (tail):\n%s", file, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}
