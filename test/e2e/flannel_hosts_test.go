package e2e

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/overlay"
)

// flatNetwork is the conflist of examples/flannel-docker-hosts (kube-flannel's,
// named cbr0, with forceAddress in the delegate) on each Docker host, over
// that host's flanneld lease; kubeFlannelNetwork is kube-flannel's as is
// (examples/flannel), on the same bridge.
var (
	flatNetwork = podNetwork{name: "e2efl-flat", example: "flannel-docker-hosts", file: "10-flannel.conflist",
		bindAs: "cbr0", overlay: true, edit: flannelNetwork.edit}
	kubeFlannelNetwork = podNetwork{name: "e2efl-kube", example: "flannel", file: "10-flannel.conflist",
		bindAs: "cbr0", overlay: true, edit: flannelNetwork.edit}
)

// flatHosts are the two Docker hosts of TestFlannelDockerHosts: host A is
// this host (the suite's engines and docker-cni), host B a node with its
// own dockerd and docker-cni; flanneld on both.
type flatHosts struct {
	fc *flannelCluster
	b  *dockerHost
	// storeA and storeB are host-local's stores of the flannel network on
	// each host.
	storeA, storeB string
}

// TestFlannelDockerHosts: plain Docker hosts (no Kubernetes) on one flat
// network over real flanneld (vxlan, --ip-masq) and etcd: the commands of
// examples/flannel-docker-hosts run on both hosts; containers on host A
// (each engine) and host B reach each other by address both ways, each
// seeing the other's own address (no NAT); each host reaches its own
// containers; docker rm releases the address in that host's store. Then
// the faults: etcd stopped, flanneld restarted, a new lease.
func TestFlannelDockerHosts(t *testing.T) {
	dir := t.TempDir()
	example := filepath.Join(s.repo, "examples", flatNetwork.example)
	cleanHost(t, "e2efl1br0", flannelNet.Network)
	fc := startFlannel(t, dir, func(e *overlay.Etcd) {
		runReadmeScript(t, s.engines[0], example, "2.", []string{"ETCD_ENDPOINTS=" + e.ClientURLs[0]}, nil)
		checkFlannelConfig(t, e)
	})
	h := &flatHosts{fc: fc, b: startDockerHost(t, fc.node, filepath.Join(dir, "hostb")),
		storeA: filepath.Join(dir, "node1", "ipam", flatNetwork.name), storeB: filepath.Join(dir, "node2", "ipam", flatNetwork.name)}
	confA, err := flatNetwork.conflist("e2efl1br0", netip.Prefix{}, filepath.Join(dir, "node1"))
	if err != nil {
		t.Fatal(err)
	}
	writeConflist(t, "10-"+flatNetwork.name+".conflist", confA)
	for _, pn := range []podNetwork{flatNetwork, kubeFlannelNetwork} {
		confB, err := pn.conflist("e2efl2br0", netip.Prefix{}, filepath.Join(dir, "node2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(h.b.d.confDir, "10-"+pn.name+".conflist"), []byte(confB), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, e := range s.engines {
		t.Run(e.name, func(t *testing.T) {
			h.runExample(t, e)
			h.checkPair(t, e, uint16(5300+10*i))
		})
	}
	t.Run("faults", func(t *testing.T) { h.checkFaults(t, s.engines[len(s.engines)-1]) })
}

// checkFlannelConfig: the README's net-conf.json, now in etcd, is the
// suite's flannelNet (whose link and network the other checks use).
func checkFlannelConfig(t *testing.T, e *overlay.Etcd) {
	kv, err := e.Get(t.Context(), flannelPrefix+"/config")
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	json.Unmarshal([]byte(kv[flannelPrefix+"/config"]), &got)
	json.Unmarshal([]byte(flannelNet.JSON()), &want)
	if b, ok := got["Backend"].(map[string]any); ok && b["VNI"] == nil {
		b["VNI"] = float64(1) // flannel's default
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("flannel's config from the README: %v, want the suite's %v", got, want)
	}
}

// runExample runs steps 6 to 8 of the example's README on host A (engine
// e) and host B (in its namespaces), each reaching the other's container.
func (h *flatHosts) runExample(t *testing.T, e engine) {
	example := filepath.Join(s.repo, "examples", flatNetwork.example)
	netA, netB := uniq(t, e, "flat-a"), uniq(t, e, "flat-b")
	t.Cleanup(func() {
		e.docker("rm", "-f", "flat-demo")
		e.docker("network", "rm", netA)
		h.b.docker("rm", "-f", "flat-demo")
		h.b.docker("network", "rm", netB)
	})
	envA := []string{"CNI_NETWORK=" + flatNetwork.name, "CNI_CONF_DIR=" + s.d.confDir, "DRIVER=" + s.driver, "IMAGE=" + image, "NET=" + netA}
	envB := []string{"CNI_NETWORK=" + flatNetwork.name, "CNI_CONF_DIR=" + h.b.d.confDir, "DRIVER=" + s.driver, "IMAGE=" + image, "NET=" + netB}
	inB := h.b.node.CommandContext
	ipA := lastLine(runReadmeScript(t, e, example, "6.", envA, nil))
	ipB := lastLine(runReadmeScript(t, h.b.engine, example, "6.", envB, inB))
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("README containers: host A %s, host B %s", ipA, ipB)
	runReadmeScript(t, e, example, "7.", append(envA, "OTHER_IP="+ipB), nil)
	runReadmeScript(t, h.b.engine, example, "7.", append(envB, "OTHER_IP="+ipA), inB)
	runReadmeScript(t, e, example, "8.", envA, nil)
	runReadmeScript(t, h.b.engine, example, "8.", envB, inB)
}

// flatPair is a container on each host, on networks bound to each host's
// flannel conflist.
type flatPair struct {
	netA, netB, ctrA, ctrB, ipA, ipB string
}

// bind makes a network bound to the flannel conflist on host A (engine e)
// and on host B.
func (h *flatHosts) bind(t *testing.T, e engine) (netA, netB string) {
	t.Helper()
	netA, netB = uniq(t, e, "flat-a"), uniq(t, e, "flat-b")
	bindTo(t, s.d, e, netA, flatNetwork.name)
	bindTo(t, h.b.d, h.b.engine, netB, flatNetwork.name)
	return netA, netB
}

// bindTo makes network on engine e (served by docker-cni d) bound to the
// CNI network cniNet, removed at the end of the test.
func bindTo(t *testing.T, d *daemon, e engine, network, cniNet string) {
	t.Helper()
	if out, err := d.cliOut("network", "create", network, "--bind", cniNet, "--cni-conf-dir", d.confDir,
		"--docker-host", e.host, "--driver", s.driver); err != nil {
		t.Fatalf("docker-cni network create %s on %s: %v\n%s", network, e.name, err, out)
	}
	t.Cleanup(func() { e.docker("network", "rm", network) })
}

// run starts container name on host A (engine e, on netA) or B (netB)
// and checks its address is in that host's lease.
func (h *flatHosts) run(t *testing.T, e engine, name, network string) string {
	t.Helper()
	e.container(t, name, "--network", network)
	ip := e.inspectIP(t, name, network)
	f := h.fc.fl1
	if e.host == h.b.host {
		f = h.fc.fl2
	}
	lease, err := f.Subnet()
	if err != nil {
		t.Fatal(err)
	}
	if !lease.Contains(netip.MustParseAddr(ip)) {
		t.Errorf("%s on %s: address %s is not in the host's lease %s", name, e.name, ip, lease)
	}
	return ip
}

// checkPair: containers on A and B reach each other both ways, with no NAT
// either way; each host reaches its own; docker rm releases each address
// in its host's store.
func (h *flatHosts) checkPair(t *testing.T, e engine, port uint16) {
	ctx := t.Context()
	netA, netB := h.bind(t, e)
	ctrA, ctrB := netA+"-c", netB+"-c"
	ipA, ipB := h.run(t, e, ctrA, netA), h.run(t, h.b.engine, ctrB, netB)
	h.reach(t, e, ctrA, ipA, ctrB, ipB)
	if out, err := run(ctx, "busybox", "ping", "-c", "1", "-W", "3", ipA); err != nil {
		t.Errorf("host A itself -> its container %s: %v\n%s", ipA, err, out)
	}
	if out, err := h.b.node.Exec(ctx, "busybox", "ping", "-c", "1", "-W", "3", ipB); err != nil {
		t.Errorf("host B itself -> its container %s: %v\n%s", ipB, err, out)
	}
	sandboxA := e.must(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", ctrA)
	expectPeer(t, h.b.engine, ctrB, ipB, h.b.pidNetNS(t, ctrB), e, ctrA, ipA, port)
	expectPeer(t, e, ctrA, ipA, sandboxA, h.b.engine, ctrB, ipB, port+1)
	for _, c := range []struct {
		e              engine
		ctr, ip, store string
	}{{e, ctrA, ipA, h.storeA}, {h.b.engine, ctrB, ipB, h.storeB}} {
		file := filepath.Join(c.store, c.ip)
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s holds %s, but its store has no %s: %v", c.ctr, c.ip, file, err)
		}
		c.e.must(t, "rm", "-f", c.ctr)
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Errorf("docker rm %s on %s: its address is still reserved in %s (%v)", c.ctr, c.e.name, file, err)
		}
	}
}

// reach: ctrA (engine e) and ctrB (host B) ping each other.
func (h *flatHosts) reach(t *testing.T, e engine, ctrA, ipA, ctrB, ipB string) {
	t.Helper()
	if err := e.ping(ctrA, ipB); err != nil {
		t.Errorf("host A -> host B: %v", err)
	}
	if err := h.b.ping(ctrB, ipA); err != nil {
		t.Errorf("host B -> host A: %v", err)
	}
}

// expectPeer: a TCP connection from container cli (on engine ce, address
// cliIP) to container srv (on engine se, address srvIP, netns srvNS) shows
// cliIP as the peer in srv.
func expectPeer(t *testing.T, se engine, srv, srvIP, srvNS string, ce engine, cli, cliIP string, port uint16) {
	t.Helper()
	p := fmt.Sprint(port)
	se.must(t, "exec", "-d", srv, "sh", "-c", "sleep 600 | nc -l -p "+p)
	waitListening(t, srvNS, p)
	ce.must(t, "exec", "-d", cli, "sh", "-c", "sleep 600 | nc "+srvIP+" "+p)
	if peers := established(t, srvNS, p); len(peers) != 1 || peers[0].String() != cliIP {
		t.Errorf("%s on %s sees %s's connection as coming from %v, want its own %s (no NAT)", srv, se.name, cli, peers, cliIP)
	}
}

// checkFaults: etcd stopped, then flanneld restarted on both hosts, then a
// new lease for host B.
func (h *flatHosts) checkFaults(t *testing.T, e engine) {
	ctx := t.Context()
	netA, netB := h.bind(t, e)
	a1, b1 := netA+"-1", netB+"-1"
	ip1A, ip1B := h.run(t, e, a1, netA), h.run(t, h.b.engine, b1, netB)
	h.reach(t, e, a1, ip1A, b1, ip1B)

	// etcd down for a while: the running containers keep their network,
	// new ones start (the lease is in subnet.env) and reach each other.
	if err := h.fc.etcd.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	h.reach(t, e, a1, ip1A, b1, ip1B)
	a2, b2 := netA+"-2", netB+"-2"
	ip2A, ip2B := h.run(t, e, a2, netA), h.run(t, h.b.engine, b2, netB)
	h.reach(t, e, a2, ip2A, b2, ip2B)
	if err := h.fc.etcd.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// flanneld restarted on each host: the same lease, nothing changes.
	for _, f := range []*overlay.Flanneld{h.fc.fl1, h.fc.fl2} {
		before, err := os.ReadFile(f.SubnetFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Stop(); err != nil {
			t.Fatal(err)
		}
		h.reach(t, e, a1, ip1A, b1, ip1B) // routes stay while it is down
		if err := f.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if after, err := os.ReadFile(f.SubnetFile); err != nil || string(after) != string(before) {
			t.Errorf("flanneld on %s restarted: subnet file\n%s\nwant it unchanged:\n%s (%v)", f.Iface, after, before, err)
		}
		h.reach(t, e, a1, ip1A, b1, ip1B)
	}
	a3 := netA + "-3"
	h.reach(t, e, a3, h.run(t, e, a3, netA), b2, ip2B)

	// A network on B bound to kube-flannel's conflist as is (no
	// forceAddress), on the same bridge, to try after the new lease.
	netK := uniq(t, e, "kube-b")
	bindTo(t, h.b.d, h.b.engine, netK, kubeFlannelNetwork.name)
	h.newLease(t, e, netB, netK, a1, ip1A, b1, ip1B)
}

// newLease moves host B to a new lease, as an operator does with a
// reservation, and restarts its flanneld. On kube-flannel's conflist as is
// (netK) the bridge plugin refuses a new container: the bridge still has
// the old gateway. On the example's (netB, forceAddress) new containers
// get addresses in the new lease and reach host A, b1 keeps its address,
// and host B's docker-cni says so once for that network.
func (h *flatHosts) newLease(t *testing.T, e engine, netB, netK, a1, ip1A, b1, ip1B string) {
	ctx := t.Context()
	l1, old := h.fc.leases(t)
	moved := netip.MustParsePrefix("10.250.254.0/24")
	if moved == l1 || moved == old {
		moved = netip.MustParsePrefix("10.250.253.0/24")
	}
	if err := h.fc.fl2.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.fc.etcd.Del(ctx, overlay.LeaseKey(flannelPrefix, old)); err != nil {
		t.Fatal(err)
	}
	if err := h.fc.etcd.Put(ctx, overlay.LeaseKey(flannelPrefix, moved), fmt.Sprintf(`{"PublicIP":%q}`, h.fc.node.NodeIP)); err != nil {
		t.Fatal(err)
	}
	if err := h.fc.fl2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, l2 := h.fc.leases(t); l2 != moved {
		t.Fatalf("host B's lease after the reservation: %s, want %s", l2, moved)
	}
	h.fc.waitRoutes(t)
	kube := netK + "-1"
	t.Cleanup(func() { h.b.docker("rm", "-f", kube) })
	const stale = "already has an IP address different from " // the bridge plugin's words
	if out, err := h.b.docker("run", "-d", "--name", kube, "--network", netK, image, "sleep", "3600"); err == nil || !strings.Contains(out, stale) {
		t.Errorf("a new container on kube-flannel's conflist after a new lease: %v\n%s\nwant the bridge plugin's refusal (%q...)", err, out, stale)
	}
	const warning = "flannel gave this node a new subnet"
	for _, b := range []string{netB + "-4", netB + "-5"} {
		ip := h.run(t, h.b.engine, b, netB) // checks it is in the new lease
		h.reach(t, e, a1, ip1A, b, ip)
	}
	if got := h.b.engine.inspectIP(t, b1, netB); got != ip1B {
		t.Errorf("%s's address after the new lease: %s, want the one it had, %s", b1, got, ip1B)
	}
	if n := countLines(h.b.d.log.Name(), warning, "cni_network="+flatNetwork.name); n != 1 {
		t.Errorf("host B's docker-cni logged %q for %s %d times, want once", warning, flatNetwork.name, n)
	}
	if s.d.logContains(warning) {
		t.Errorf("host A's docker-cni logged %q: its lease did not change", warning)
	}
	expectPeer(t, e, a1, ip1A, e.must(t, "inspect", "-f", "{{.NetworkSettings.SandboxKey}}", a1),
		h.b.engine, netB+"-4", h.b.engine.inspectIP(t, netB+"-4", netB), 5399)
}

// countLines counts the lines of file that hold every one of words.
func countLines(file string, words ...string) int {
	b, _ := os.ReadFile(file)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			n++
		}
	}
	return n
}
