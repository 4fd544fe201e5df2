package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/test/cri"
	"github.com/docker-cni/docker-cni/test/node"
)

// The etcd-datastore Calico node of TestCalicoEtcd: loopback ports and an
// address pool of its own.
const (
	calEtcdClient, calEtcdPeer, calFelixHealth = 24790, 24791, 24792
	calNode                                    = "e2ecal-node"
	calEtcdNet                                 = "e2ecal-etcd"
	calEtcdPool                                = "10.248.0.0/17"
	calEtcdBroadcast                           = "10.248.127.255"
	// calNoAPI is a Kubernetes API server address nothing serves: the
	// pods' Calico plugin takes its Kubernetes path (the CRI runtime sends
	// K8S_POD_* args), which makes a client but, without policy type k8s
	// and without a kubeconfig, never calls it.
	calNoAPI = "https://127.0.0.1:24793"
)

// calicoNode is a node running Calico: its datastore settings (for
// calicoctl and felix), the pods' runtime and a pod serving HTTP on 8080.
type calicoNode struct {
	bin, dir  string
	datastore []string
	pod       *cri.Pod
	felix     bool
}

// TestCalicoEtcd: on a node running Calico with the etcd datastore (the
// real calico and calico-ipam plugins, felix, calicoctl), a Docker network
// bound to Calico's conflist: containers get their address from Calico IPAM
// (--ip too), become workload endpoints of orchestrator cni, reach a CRI
// pod on the node and are reached by it and by the node, docker inspect
// shows their address and Calico's gateway 169.254.1.1, published ports
// work, and docker rm releases the allocation in the datastore. The
// example's commands (node set-up, the bind) run first.
func TestCalicoEtcd(t *testing.T) {
	bin := calicoBin(t)
	dir := t.TempDir()
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	calicoHost(t)
	cleanFelix(t) // also the calico plugins' state dirs
	etcd := startEtcd(t, dir, calEtcdClient, calEtcdPeer)
	n := &calicoNode{bin: bin, dir: dir, datastore: []string{"DATASTORE_TYPE=etcdv3", "ETCD_ENDPOINTS=" + etcd}}
	conf := editConflist(t, "etcd", calEtcdNet, func(c map[string]any) {
		c["etcd_endpoints"], c["nodename"], c["nodename_file_optional"] = etcd, calNode, true
		// No Kubernetes policy: no pod to read (the CRI runtime runs the
		// pod without an API server).
		delete(c, "policy")
		c["log_file_path"] = filepath.Join(dir, "calico-cni.log")
		// No kubeconfig: with one, calico-ipam reads the Namespace of
		// the workload (for pools' namespaceSelector), from an API
		// server this node has none of.
		c["kubernetes"] = map[string]any{"k8s_api_root": calNoAPI}
	})
	writeConflist(t, "10-"+calEtcdNet+".conflist", conf)
	for _, e := range s.engines {
		t.Run("example-"+e.name, func(t *testing.T) {
			runCalicoExample(t, e, "etcd", append(n.datastore,
				"NODE="+calNode, "POOL="+calEtcdPool, "POOL_NAME="+calEtcdNet, "NETWORK_ADDRESS=10.248.0.0", "GATEWAY=10.248.0.1",
				"BROADCAST="+calEtcdBroadcast, "CNI_NETWORK="+calEtcdNet))
		})
	}
	if t.Failed() {
		t.FailNow()
	}
	startFelix(t, bin, dir, calNode, append([]string{"FELIX_DATASTORETYPE=etcdv3", "FELIX_ETCDENDPOINTS=" + etcd}, n.datastore...), calFelixHealth)
	n.felix = true
	n.pod = calicoPod(t, calicoRuntime(t, dir, calEtcdNet, conf))
	for i, e := range s.engines {
		t.Run(e.name, func(t *testing.T) {
			n.checkEngine(t, e, calEtcdNet, calEtcdPool, "169.254.1.1", fmt.Sprintf("10.248.1.%d", 10+i), 24880+10*i)
		})
	}
}

// checkEngine binds a network of engine e to the node's conflist cniNet
// and checks containers on it: gw is the gateway they must get, fixed an
// address of pool to ask for with --ip, port a host port to publish on.
func (n *calicoNode) checkEngine(t *testing.T, e engine, cniNet, pool, gw, fixed string, port int) {
	net := "e2ecal-" + e.name + "-" + cniNet
	out, err := s.d.cliOut("network", "create", net, "--bind", cniNet, "--subnet", pool,
		"--cni-conf-dir", s.d.confDir, "--docker-host", e.host, "--driver", s.driver)
	if err != nil {
		t.Fatalf("docker-cni network create --bind %s: %v\n%s", cniNet, err, out)
	}
	t.Cleanup(func() { e.cleanNetwork(t, net) })
	web := net + "-web"
	t.Cleanup(func() { e.docker("rm", "-f", web) })
	e.must(t, "run", "-d", "--name", web, "--network", net, "-p", fmt.Sprintf("127.0.0.1:%d:80", port),
		image, "sh", "-c", "echo "+web+" >/tmp/index.html; exec httpd -f -p 80 -h /tmp")
	ip := e.inspectIP(t, web, net)
	checkInsideIP(t, e, web, ip)
	if got := e.must(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).Gateway}}", net), web); got != gw {
		t.Errorf("docker inspect gateway of %s: %q, want %s", web, got, gw)
	}
	if routes := e.must(t, "exec", web, "ip", "route"); !strings.Contains(routes, "default via "+gw) {
		t.Errorf("routes in %s:\n%s\nwant the default route via %s", web, routes, gw)
	}
	args := attachmentArgs(t, ip)
	if _, has := args["K8S_POD_NAME"]; has {
		t.Errorf("CNI_ARGS of %s carry pod identity: %v", web, args)
	}
	n.checkAllocated(t, ip, true)
	n.checkReach(t, e, web, ip)
	if n.felix {
		n.checkPolicy(t, web, ip)
	}
	if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || !strings.Contains(body, web) {
		t.Errorf("-p 127.0.0.1:%d:80 of %s: %q, %v", port, web, body, err)
	}
	other := net + "-fixed"
	e.container(t, other, "--network", net, "--ip", fixed)
	if got := e.inspectIP(t, other, net); got != fixed {
		t.Errorf("--ip %s: docker inspect says %s", fixed, got)
	}
	n.checkAllocated(t, fixed, true)
	e.must(t, "rm", "-f", web, other)
	n.checkAllocated(t, ip, false)
	n.checkAllocated(t, fixed, false)
	n.checkSecondNetwork(t, e, net)
	n.checkMAC(t, e, cniNet, net)
}

// checkMAC: docker run --mac-address. On the etcd datastore calico records
// the MAC it makes the interface with, and felix points the node's
// neighbour entry for the address at it: a container that got another MAC
// from libnetwork was reached by nothing (the node, the pod) and reached
// nothing. So it is refused, saying why, and no address stays reserved.
// On the Kubernetes datastore (ptp in calico's place) the container gets
// the MAC and reaches the pod and the node both ways.
func (n *calicoNode) checkMAC(t *testing.T, e engine, cniNet, net string) {
	t.Helper()
	if e.name == "debian" {
		return // the docker CLI sends --mac-address with --network only to API 1.44+; 20.10 speaks 1.41
	}
	ctr, mac := net+"-mac", "02:42:0a:f8:aa:01"
	t.Cleanup(func() { e.docker("rm", "-f", ctr) })
	before := n.reserved(t, cniNet)
	out, err := e.docker("run", "-d", "--name", ctr, "--network", net, "--mac-address", mac, image, "sleep", "3600")
	if n.etcd() {
		if err == nil || !strings.Contains(out, "records the MAC it makes the interface with") {
			t.Errorf("docker run --mac-address %s on a Calico etcd network: %v %s, want it refused with the reason", mac, err, out)
		}
		if after := n.reserved(t, cniNet); after != before {
			t.Errorf("the refused docker run --mac-address left %d reservation(s) in %s, had %d", after, cniNet, before)
		}
		return
	}
	if err != nil {
		t.Fatalf("docker run --mac-address %s: %v\n%s", mac, err, out)
	}
	ip := e.inspectIP(t, ctr, net)
	if inside := strings.TrimSpace(e.must(t, "exec", ctr, "cat", "/sys/class/net/eth0/address")); inside != mac {
		t.Errorf("--mac-address %s: the container has %s", mac, inside)
	}
	if err := e.ping(ctr, n.pod.IP); err != nil {
		t.Error(err)
	}
	if out, err := node.ExecIn(t.Context(), n.pod.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		t.Errorf("pod -> %s (%s, --mac-address): %v\n%s", ctr, ip, err, out)
	}
	if out, err := runIn(t.Context(), "/", "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		t.Errorf("node -> %s (%s, --mac-address): %v\n%s", ctr, ip, err, out)
	}
	if t.Failed() {
		n.diagnose(t, e, ctr)
	}
	e.must(t, "rm", "-f", ctr)
	n.checkAllocated(t, ip, false)
}

func (n *calicoNode) etcd() bool {
	return slices.Contains(n.datastore, "DATASTORE_TYPE=etcdv3")
}

// reserved counts docker-cni's address reservations in the pools of CNI
// network cniNet.
func (n *calicoNode) reserved(t *testing.T, cniNet string) int {
	t.Helper()
	rs, err := s.d.records("reservations")
	if err != nil {
		t.Fatal(err)
	}
	return len(filterPool(rs, cniNet))
}

// checkSecondNetwork: a container whose first network is the engine's
// default bridge (so it has a default route already, which calico's own
// one would clash with) joins the Calico network with docker network
// connect, gets an allocated address, reaches the pod and is reached by
// it; docker network disconnect frees the allocation.
func (n *calicoNode) checkSecondNetwork(t *testing.T, e engine, net string) {
	t.Helper()
	ctr := net + "-second"
	e.container(t, ctr)
	if routes := e.must(t, "exec", ctr, "ip", "route"); !strings.Contains(routes, "default via") {
		t.Fatalf("%s on the default bridge has no default route:\n%s", ctr, routes)
	}
	e.must(t, "network", "connect", net, ctr)
	ip := e.inspectIP(t, ctr, net)
	n.checkAllocated(t, ip, true)
	checkInsideIP(t, e, ctr, ip)
	if err := e.ping(ctr, n.pod.IP); err != nil {
		t.Error(err)
	}
	if out, err := node.ExecIn(t.Context(), n.pod.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		t.Errorf("pod -> %s (%s, its second network): %v\n%s", ctr, ip, err, out)
	}
	if t.Failed() {
		n.diagnose(t, e, ctr)
	}
	e.must(t, "network", "disconnect", net, ctr)
	n.checkAllocated(t, ip, false)
}

// checkAllocated checks with calicoctl that addr is (or is no longer)
// allocated in the datastore; allocated, for the node and no pod.
func (n *calicoNode) checkAllocated(t *testing.T, addr string, want bool) {
	t.Helper()
	out, err := calicoctl(n.bin, n.datastore, "ipam", "show", "--ip="+addr)
	if err != nil {
		t.Errorf("calicoctl ipam show --ip=%s: %v\n%s", addr, err, out)
		return
	}
	inUse := strings.Contains(out, "is in use")
	switch {
	case want && !inUse:
		t.Errorf("%s is not allocated in Calico IPAM:\n%s", addr, out)
	case !want && inUse:
		t.Errorf("%s is still allocated in Calico IPAM after docker rm:\n%s", addr, out)
	case want && (!strings.Contains(out, "node: "+calNode) || strings.Contains(out, "pod:")):
		t.Errorf("allocation of %s: want the node's and no pod's:\n%s", addr, out)
	}
}

// checkReach: the container and the node's pod reach each other (ICMP and
// a new TCP connection each way), and the node reaches the container.
func (n *calicoNode) checkReach(t *testing.T, e engine, ctr, ip string) {
	t.Helper()
	failed := false
	fail := func(format string, args ...any) {
		t.Helper()
		failed = true
		t.Errorf(format, args...)
	}
	if err := e.ping(ctr, n.pod.IP); err != nil {
		fail("%v", err)
	}
	get := fmt.Sprintf(`printf 'GET /hostname HTTP/1.0\r\n\r\n' | nc -w 5 %s 8080`, n.pod.IP)
	if out, err := e.docker("exec", ctr, "sh", "-c", get); err != nil || !strings.Contains(out, "e2ecal-web") {
		fail("%s -> pod %s:8080: %v %q", ctr, n.pod.IP, err, out)
	}
	if out, err := node.ExecIn(t.Context(), n.pod.NetNS, "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		fail("pod -> %s (%s): %v\n%s", ctr, ip, err, out)
	}
	get = fmt.Sprintf(`printf 'GET /index.html HTTP/1.0\r\n\r\n' | busybox nc -w 5 %s 80`, ip)
	if out, err := node.ExecIn(t.Context(), n.pod.NetNS, "sh", "-c", get); err != nil || !strings.Contains(out, ctr) {
		fail("pod -> %s:80: %v %q", ip, err, out)
	}
	if out, err := runIn(t.Context(), "/", "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		fail("node -> %s (%s): %v\n%s", ctr, ip, err, out)
	}
	if failed {
		n.diagnose(t, e, ctr)
	}
}

// diagnose logs the routes, neighbours and forwarding rules of the host,
// the pod and the container.
func (n *calicoNode) diagnose(t *testing.T, e engine, ctr string) {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"ip", "route"}, {"ip", "neigh"}, {"iptables", "-vnL", "FORWARD"}, {"iptables", "-vnL", "DOCKER-USER"}, {"ip", "-br", "link"}} {
		out, _ := runIn(t.Context(), "/", c[0], c[1:]...)
		fmt.Fprintf(&b, "host %v:\n%s\n", c, out)
	}
	for _, c := range [][]string{{"ip", "addr"}, {"ip", "route"}, {"ip", "neigh"}} {
		out, _ := node.ExecIn(t.Context(), n.pod.NetNS, c...)
		fmt.Fprintf(&b, "pod %v:\n%s\n", c, out)
		out, _ = e.docker(append([]string{"exec", ctr}, c...)...)
		fmt.Fprintf(&b, "container %v:\n%s\n", c, out)
	}
	t.Log(b.String())
}

// checkPolicy: felix polices the container as the workload endpoint it is
// (etcd datastore): a GlobalNetworkPolicy selecting orchestrator cni that
// denies ingress from pods stops the pod's pings and lets the node's pass;
// deleted, the pod's pass again.
func (n *calicoNode) checkPolicy(t *testing.T, ctr, ip string) {
	t.Helper()
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(`apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: e2ecal-deny-pods
spec:
  order: 10
  selector: projectcalico.org/orchestrator == 'cni'
  types: [Ingress]
  ingress:
  - action: Deny
    source:
      selector: projectcalico.org/orchestrator == 'k8s'
  - action: Allow
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := calicoctl(n.bin, n.datastore, "apply", "-f", policy); err != nil {
		t.Fatalf("calicoctl apply policy: %v\n%s", err, out)
	}
	deleted := false
	del := func() {
		if !deleted {
			deleted = true
			calicoctl(n.bin, n.datastore, "delete", "globalnetworkpolicy", "e2ecal-deny-pods")
		}
	}
	defer del()
	podPing := func() error {
		_, err := node.ExecIn(t.Context(), n.pod.NetNS, "busybox", "ping", "-c", "1", "-W", "1", ip)
		return err
	}
	if err := eventually(t, func() error {
		if podPing() == nil {
			return fmt.Errorf("the pod still reaches %s", ctr)
		}
		return nil
	}); err != nil {
		t.Errorf("felix did not apply the policy denying pods -> %s: %v", ctr, err)
	}
	if out, err := runIn(t.Context(), "/", "busybox", "ping", "-c", "1", "-W", "3", ip); err != nil {
		t.Errorf("with the policy, node -> %s (%s): %v\n%s", ctr, ip, err, out)
	}
	del()
	if err := eventually(t, podPing); err != nil {
		t.Errorf("policy deleted, pod -> %s: %v", ctr, err)
	}
}
