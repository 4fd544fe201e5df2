package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/cri"
	"github.com/docker-cni/docker-cni/test/node"
)

// The two nodes of the cross-node tests: node 1 is this host (its pods from
// a CRI runtime, its Docker containers through docker-cni), node 2 a netns
// with a CRI runtime inside (package node). The host-gw networks' addresses
// lie in node.Range, with routes the test writes; flannel's come from real
// flanneld over vxlan (flannel_test.go).
var (
	nodeLink  = netip.MustParsePrefix("10.231.240.0/30")
	node1Pods = netip.MustParsePrefix("10.231.241.0/24")
	node2Pods = netip.MustParsePrefix("10.231.242.0/24")
)

// podNetwork is a pod network as a cluster installs it on every node: its
// example (examples/<example>, a README whose commands the test runs and
// the conflist the cluster writes), and how a node's copy of that conflist
// gets the node's bridge, pod CIDR and dirs of the test's own (flannel's:
// the subnet file its node's flanneld writes in dir).
type podNetwork struct {
	name, example, file, bindAs string
	// overlay: the nodes' pod CIDRs are the leases real flanneld gets, and
	// its vxlan overlay routes them (not routes the test writes).
	overlay bool
	edit    func(conf map[string]any, bridge string, pods netip.Prefix, dir string) error
}

// main is the conflist's first plugin.
func mainPlugin(conf map[string]any) map[string]any {
	return conf["plugins"].([]any)[0].(map[string]any)
}

// flannelNetwork is k3s's flannel conflist over the lease real flanneld
// (vxlan, --ip-masq) wrote to dir/subnet.env on each node: FLANNEL_IPMASQ=true,
// so flanneld masquerades only traffic leaving the cluster and the delegate
// bridge does not masquerade at all.
var flannelNetwork = podNetwork{name: "e2e-flannel", example: "flannel", file: "10-flannel.conflist", bindAs: "cbr0", overlay: true,
	edit: func(conf map[string]any, bridge string, _ netip.Prefix, dir string) error {
		fl := mainPlugin(conf)
		fl["subnetFile"], fl["dataDir"] = filepath.Join(dir, "subnet.env"), filepath.Join(dir, "flannel")
		fl["ipam"] = map[string]any{"dataDir": filepath.Join(dir, "ipam")}
		fl["delegate"].(map[string]any)["bridge"] = bridge
		return nil
	}}

// kubeRouterNetwork is kube-router's conflist once it has put the node's pod
// CIDR in (bridge kube-bridge, host-local, portmap with snat); kube-router
// routes pod CIDRs between nodes as host-gw does.
var kubeRouterNetwork = podNetwork{name: "e2e-kube-router", example: "kube-router", file: "10-kuberouter.conflist", bindAs: "mynet",
	edit: func(conf map[string]any, bridge string, pods netip.Prefix, dir string) error {
		br := mainPlugin(conf)
		br["bridge"] = bridge
		br["ipam"] = map[string]any{"type": "host-local", "ranges": []any{[]any{map[string]any{"subnet": pods.String()}}}, "dataDir": filepath.Join(dir, "ipam")}
		return nil
	}}

// kindnetNetwork is kind's kindnetd conflist: ptp (a routed veth per pod,
// no bridge) with host-local over the node's pod CIDR, no masquerade
// (kindnetd masquerades only traffic leaving the cluster), portmap.
var kindnetNetwork = podNetwork{name: "e2e-kindnet", example: "kindnet", file: "10-kindnet.conflist", bindAs: "kindnet",
	edit: func(conf map[string]any, _ string, pods netip.Prefix, dir string) error {
		ipam := mainPlugin(conf)["ipam"].(map[string]any)
		ipam["dataDir"], ipam["ranges"] = filepath.Join(dir, "ipam"), []any{[]any{map[string]any{"subnet": pods.String()}}}
		return nil
	}}

// conflist is the node's copy of the example's conflist.
func (pn podNetwork) conflist(bridge string, pods netip.Prefix, dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.repo, "examples", pn.example, pn.file))
	if err != nil {
		return "", err
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		return "", fmt.Errorf("examples/%s/%s: %w", pn.example, pn.file, err)
	}
	if conf["name"] != pn.bindAs {
		return "", fmt.Errorf("examples/%s/%s is named %v, the example binds %s", pn.example, pn.file, conf["name"], pn.bindAs)
	}
	conf["name"] = pn.name
	if err := pn.edit(conf, bridge, pods, dir); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(conf, "", "  ")
	return string(out), err
}

// TestPodNetworkAcrossNodes: a container of each engine, bound to the pod
// network of node 1, and pods on node 1 and on node 2 reach each other
// both ways; the pod on node 2 sees the container's own address and the
// container the pod's (no NAT between pods, as Kubernetes requires); the
// node's own processes reach the container (kubelet probes).
func TestPodNetworkAcrossNodes(t *testing.T) {
	for _, pn := range []podNetwork{flannelNetwork, kubeRouterNetwork, kindnetNetwork} {
		t.Run(pn.name, func(t *testing.T) {
			c := startCluster(t, pn)
			for i, e := range s.engines {
				t.Run(e.name, func(t *testing.T) {
					c.checkContainer(t, e, uint16(5100+10*i))
					c.runExample(t, e)
				})
			}
		})
	}
}

// cluster is two nodes running pn, with a pod on each.
type cluster struct {
	pn         podNetwork
	rt1, rt2   *cri.Runtime
	pod1, pod2 *cri.Pod
	dir1       string
	// pods1 and pods2 are the nodes' pod CIDRs.
	pods1, pods2 netip.Prefix
}

func startCluster(t *testing.T, pn podNetwork) *cluster {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	c := &cluster{pn: pn, dir1: filepath.Join(dir, "node1")}
	br1, br2 := "e2en1br0", "e2en2br0"
	var n2 *node.Node
	if pn.overlay {
		br1, br2 = "e2efl1br0", "e2efl2br0"
		cleanHost(t, br1, flannelNet.Network)
		fc := startFlannel(t, dir, putFlannelNet(t))
		n2 = fc.node
		c.pods1, c.pods2 = fc.leases(t)
		t.Logf("flannel leases: node 1 %s, node 2 %s", c.pods1, c.pods2)
	} else {
		cleanHost(t, br1, node1Pods)
		var err error
		if n2, err = node.Add(ctx, "e2en2", nodeLink, node2Pods); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n2.Remove(context.Background()) })
		c.pods1, c.pods2 = node1Pods, node2Pods
	}
	conf2, err := nodeConfDir(pn, br2, c.pods2, filepath.Join(dir, "node2"))
	if err != nil {
		t.Fatal(err)
	}
	if c.rt2, err = n2.StartCRI(ctx, filepath.Join(dir, "node2", "containerd"), conf2, s.d.pluginDir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.rt2.Stop() })
	conf1, err := nodeConfDir(pn, br1, c.pods1, c.dir1)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(conf1, "10-"+pn.name+".conflist"))
	if err != nil {
		t.Fatal(err)
	}
	writeConflist(t, "10-"+pn.name+".conflist", string(body))
	if c.rt1, err = cri.StartWith(ctx, filepath.Join(c.dir1, "containerd"), conf1, cri.StartOpts{CNIBinDir: s.d.pluginDir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.rt1.Stop() })
	if c.pod1, err = c.rt1.RunPod(ctx, "e2e-node1-pod", "default", nil); err != nil {
		t.Fatal(err)
	}
	if c.pod2, err = c.rt2.RunPod(ctx, "e2e-node2-pod", "default", nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// nodeConfDir writes a node's conflist into a conf dir of its own.
func nodeConfDir(pn podNetwork, bridge string, pods netip.Prefix, dir string) (string, error) {
	confDir := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return "", err
	}
	conf, err := pn.conflist(bridge, pods, dir)
	if err != nil {
		return "", err
	}
	return confDir, os.WriteFile(filepath.Join(confDir, "10-"+pn.name+".conflist"), []byte(conf), 0o644)
}

// cleanHost removes, before and after the test, what the CNI plugins leave
// on the host for a bridge and subnet.
func cleanHost(t *testing.T, bridge string, subnet netip.Prefix) {
	t.Helper()
	snap, err := cri.SnapshotHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	clean := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := snap.Cleanup(ctx, bridge, subnet); err != nil {
			t.Errorf("clean up host: %v", err)
		}
	}
	clean()
	t.Cleanup(clean)
}

// checkContainer binds a network of engine e to node 1's pod network with
// `docker-cni network create --bind`, runs a container on it and checks it
// against both pods.
func (c *cluster) checkContainer(t *testing.T, e engine, port uint16) {
	name := uniq(t, e, "nodes")
	if out, err := s.d.cliOut("network", "create", name, "--bind", c.pn.name, "--cni-conf-dir", s.d.confDir,
		"--docker-host", e.host, "--driver", s.driver); err != nil {
		t.Fatalf("docker-cni network create: %v\n%s", err, out)
	}
	t.Cleanup(func() { e.docker("network", "rm", name) })
	ctr := name + "-c"
	e.container(t, ctr, "--network", name)
	ip := e.inspectIP(t, ctr, name)
	if !c.pods1.Contains(netip.MustParseAddr(ip)) {
		t.Fatalf("container address %s is not in node 1's pod CIDR %s", ip, c.pods1)
	}
	for _, pod := range []*cri.Pod{c.pod1, c.pod2} {
		if err := e.ping(ctr, pod.IP); err != nil {
			t.Errorf("container -> pod %s (%s): %v", pod.Name, pod.IP, err)
		}
		if out, err := node.ExecIn(t.Context(), pod.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
			t.Errorf("pod %s (%s) -> container %s: %v\n%s", pod.Name, pod.IP, ip, err, out)
		}
	}
	if out, err := run(t.Context(), "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		t.Errorf("node 1 itself (a kubelet probe) -> container %s: %v\n%s", ip, err, out)
	}
	c.checkNoNAT(t, e, ctr, ip, port)
}

// checkNoNAT: a TCP connection from the container to the pod on node 2
// shows the container's own address there, and one from that pod to the
// container shows the pod's address in the container.
func (c *cluster) checkNoNAT(t *testing.T, e engine, ctr, ip string, port uint16) {
	ctx := t.Context()
	p := fmt.Sprint(port)
	if _, err := c.rt2.RunContainer(ctx, c.pod2, []string{"/bin/busybox", "sh", "-c", "sleep 600 | nc -l -p " + p}); err != nil {
		t.Fatal(err)
	}
	waitListening(t, c.pod2.NetNS, p)
	e.must(t, "exec", "-d", ctr, "sh", "-c", "sleep 600 | nc "+c.pod2.IP+" "+p)
	if peers := established(t, c.pod2.NetNS, p); len(peers) != 1 || peers[0].String() != ip {
		t.Errorf("pod on node 2 sees the container's connection as coming from %v, want the container's own %s (no NAT)", peers, ip)
	}
	back := fmt.Sprint(port + 1)
	e.must(t, "exec", "-d", ctr, "sh", "-c", "sleep 600 | nc -l -p "+back)
	sandbox := e.must(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", ctr)
	waitListening(t, sandbox, back)
	if _, err := c.rt2.RunContainer(ctx, c.pod2, []string{"/bin/busybox", "sh", "-c", "sleep 600 | nc " + ip + " " + back}); err != nil {
		t.Fatal(err)
	}
	if peers := established(t, sandbox, back); len(peers) != 1 || peers[0].String() != c.pod2.IP {
		t.Errorf("the container sees the connection of the pod on node 2 as coming from %v, want the pod's own %s (no NAT)", peers, c.pod2.IP)
	}
}

// runExample runs the commands of the pod network's example README against
// engine e, with the two pods as its POD_IP and REMOTE_POD_IP.
func (c *cluster) runExample(t *testing.T, e engine) {
	net := uniq(t, e, "example")
	t.Cleanup(func() {
		if ids, _ := e.docker("ps", "-aq", "--filter", "network="+net); ids != "" {
			e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		e.docker("network", "rm", net)
	})
	env := []string{"CNI_NETWORK=" + c.pn.name, "CNI_CONF_DIR=" + s.d.confDir, "DRIVER=" + s.driver, "IMAGE=" + image,
		"NET=" + net, "POD_IP=" + c.pod1.IP, "REMOTE_POD_IP=" + c.pod2.IP}
	runReadme(t, e, filepath.Join(s.repo, "examples", c.pn.example), env)
}

// waitListening waits until something listens on TCP port in netns.
func waitListening(t *testing.T, netns, port string) {
	t.Helper()
	err := eventually(t, func() error {
		out, err := node.ExecIn(t.Context(), netns, "ss", "-tlnH", "sport = :"+port)
		if err == nil && strings.TrimSpace(out) == "" {
			err = errors.New("not listening yet")
		}
		return err
	})
	if err != nil {
		t.Fatalf("no listener on port %s in %s: %v", port, netns, err)
	}
}

// established are the peers of the connections established to port in
// netns, once there is one.
func established(t *testing.T, netns, port string) []netip.Addr {
	t.Helper()
	var peers []netip.Addr
	err := eventually(t, func() error {
		out, err := node.ExecIn(t.Context(), netns, "ss", "-tnH", "state", "established", "sport = :"+port)
		if peers = node.PeerAddrs(out); err == nil && len(peers) == 0 {
			err = fmt.Errorf("no connection yet (ss: %q)", out)
		}
		return err
	})
	if err != nil {
		t.Errorf("no connection to port %s in %s: %v", port, netns, err)
	}
	return peers
}

// eventually retries fn for up to 15 s.
func eventually(t *testing.T, fn func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) || t.Context().Err() != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}
