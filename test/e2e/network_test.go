package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkReach pings each container from the other.
func checkReach(t *testing.T, e engine, a, ipA, b, ipB string) {
	t.Helper()
	if err := e.ping(a, ipB); err != nil {
		t.Error(err)
	}
	if err := e.ping(b, ipA); err != nil {
		t.Error(err)
	}
}

// checkInsideIP checks that the address docker inspect reports is the one
// the container really has on its interface.
func checkInsideIP(t *testing.T, e engine, ctr, ip string) {
	t.Helper()
	out := e.must(t, "exec", ctr, "ip", "-4", "-o", "addr", "show")
	if !strings.Contains(out, " "+ip+"/") {
		t.Errorf("docker inspect says %s has %s, but inside it has:\n%s", ctr, ip, out)
	}
}

// endpointOf finds docker-cni's endpoint record holding addr.
func endpointOf(t *testing.T, addr string) map[string]any {
	t.Helper()
	eps, err := s.d.records("endpoints")
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		for _, a := range ep["Addresses"].([]any) {
			if strings.HasPrefix(a.(string), addr+"/") {
				return ep
			}
		}
	}
	t.Fatalf("no docker-cni endpoint holds %s", addr)
	return nil
}

// storeOwner reads host-local's record of addr in dataDir/name.
func storeOwner(dataDir, name, addr string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, name, addr))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]), true
}

// checkReserved checks that addr is in the host-local store under the owner
// docker-cni recorded for it.
func checkReserved(t *testing.T, dataDir, name, addr string) {
	t.Helper()
	owner, ok := storeOwner(dataDir, name, addr)
	if !ok {
		t.Fatalf("%s is not in host-local's store %s", addr, filepath.Join(dataDir, name))
	}
	rs, err := s.d.records("reservations")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r["Address"] == addr {
			if r["OwnerID"] != owner {
				t.Errorf("store owner of %s is %q, docker-cni recorded %q", addr, owner, r["OwnerID"])
			}
			return
		}
	}
	t.Errorf("docker-cni has no reservation record for %s (store owner %q)", addr, owner)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

// bridgePorts lists the links enslaved to a bridge.
func bridgePorts(bridge string) []string {
	entries, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// freshBridge removes a bridge a test's conflist names, before the test
// (a killed earlier run may have left it, and its route) and after it.
func freshBridge(t *testing.T, name string) {
	t.Helper()
	run(t.Context(), "ip", "link", "del", name)
	t.Cleanup(func() { run(context.Background(), "ip", "link", "del", name) })
}

func networkRecord(t *testing.T, id string) map[string]any {
	t.Helper()
	nws, err := s.d.records("networks")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nws {
		if n["ID"] == id {
			return n
		}
	}
	return nil
}

func natRulesMentioning(t *testing.T, s string) int {
	out, err := run(t.Context(), "iptables", "-t", "nat", "-S")
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v\n%s", err, out)
	}
	return strings.Count(out, s)
}

// TestGeneratedNetwork: a network created with --subnet and no conflist
// gets a generated bridge + host-local chain; containers reach each other,
// docker inspect tells the truth, and rm / network rm clean up.
func TestGeneratedNetwork(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "gen")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(1))
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		nw := networkRecord(t, id)
		if nw == nil {
			t.Fatalf("docker-cni has no record of network %s", id)
		}
		cniName, bridge := nw["CNINetwork"].(string), nw["BridgeName"].(string)
		dataDir := filepath.Join(s.d.stateDir, "ipam")

		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)
		checkInsideIP(t, e, c1, ip1)
		checkInsideIP(t, e, c2, ip2)
		checkReach(t, e, c1, ip1, c2, ip2)
		checkReserved(t, dataDir, cniName, ip1)
		checkReserved(t, dataDir, cniName, ip2)
		if ep := endpointOf(t, ip1); ep["Attachment"].(map[string]any)["Mode"] != e.joinMode {
			t.Errorf("join mode on %s: got %v, want %s", e.name, ep["Attachment"].(map[string]any)["Mode"], e.joinMode)
		}
		if got := len(bridgePorts(bridge)); got != 2 {
			t.Errorf("bridge %s has %d ports, want 2: %v", bridge, got, bridgePorts(bridge))
		}
		// docker-cni ls maps container, endpoint and CNI attachment (on
		// 20.10 learnt from the engine in the background).
		id1 := e.must(t, "inspect", "-f", "{{.Id}}", c1)
		ep1 := e.must(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).EndpointID}}", name), c1)
		waitFor(t, "docker-cni ls names the container of "+ip1, func() bool {
			r := lsRow(t, ip1)
			return r["Name"] == c1 && r["Container"] == id1
		})
		if r := lsRow(t, ip1); r["Endpoint"] != ep1 || r["CNIContainerID"] != ep1 || r["IfName"] != "eth0" {
			t.Errorf("docker-cni ls row of %s: %v; want endpoint and CNI container ID %s, eth0", c1, r, ep1)
		}

		e.must(t, "rm", "-f", c2)
		if _, ok := storeOwner(dataDir, cniName, ip2); ok {
			t.Errorf("docker rm did not release %s from the host-local store", ip2)
		}
		settle(t, func() bool { return len(bridgePorts(bridge)) == 1 })
		if got := bridgePorts(bridge); len(got) != 1 {
			t.Errorf("after docker rm, bridge %s has ports %v, want just c1's", bridge, got)
		}
		if n := natRulesMentioning(t, ip2+"/32"); n != 0 {
			t.Errorf("after docker rm, %d nat rules still mention %s", n, ip2)
		}

		e.must(t, "rm", "-f", c1)
		e.must(t, "network", "rm", name)
		if linkExists(bridge) {
			t.Errorf("network rm left bridge %s", bridge)
		}
		if networkRecord(t, id) != nil {
			t.Errorf("network rm left docker-cni's record of %s", id)
		}
		if n := natRulesMentioning(t, cniName); n != 0 {
			t.Errorf("%d nat rules still mention %s", n, cniName)
		}
		pools, _ := s.d.records("pools")
		for _, p := range pools {
			if p["Subnet"] == e.subnet(1) {
				t.Errorf("network rm left pool %v", p["ID"])
			}
		}
	})
}

// writeConflist puts a conflist in the daemon's CNI conf dir for the test.
func writeConflist(t *testing.T, file, body string) string {
	t.Helper()
	p := filepath.Join(s.d.confDir, file)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(p) })
	return p
}

// podConflist is the shape of a kubeadm-style node's pod network.
func podConflist(name, bridge, subnet, dataDir string) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall"}
  ]
}`, name, bridge, subnet, dataDir)
}

// TestBoundNetwork: a network bound to an existing conflist by
// --ipam-opt cni.network allocates from that network's host-local store and
// puts containers on its bridge.
func TestBoundNetwork(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		cniName := fmt.Sprintf("e2e-%s-pods", e.name)
		bridge := fmt.Sprintf("e2e-%s-br", e.name)
		dataDir := filepath.Join(s.d.dir, "hostlocal-"+e.name)
		freshBridge(t, bridge)
		writeConflist(t, "10-"+cniName+".conflist", podConflist(cniName, bridge, e.subnet(2), dataDir))

		name := uniq(t, e, "bound")
		// Both spellings, agreeing, are accepted.
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver,
			"--ipam-opt", "cni.network="+cniName, "-o", "cni.network="+cniName)
		subnet := e.must(t, "network", "inspect", "-f", "{{(index .IPAM.Config 0).Subnet}}", name)
		if subnet != e.subnet(2) {
			t.Errorf("pool Docker sees: %s, want the conflist's %s", subnet, e.subnet(2))
		}
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)
		checkInsideIP(t, e, c1, ip1)
		checkReach(t, e, c1, ip1, c2, ip2)
		checkReserved(t, dataDir, cniName, ip1)
		checkReserved(t, dataDir, cniName, ip2)
		if got := len(bridgePorts(bridge)); got != 2 {
			t.Errorf("conflist bridge %s has %d ports, want 2", bridge, got)
		}
		// With the conflist's bridge up, its subnet is routed on the host.
		// Docker then re-asks for a pool when none was given; docker-cni
		// stops that loop with advice, and --subnet works.
		again := name + "-again"
		out, err := e.docker("network", "create", "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName, again)
		if err == nil || !strings.Contains(out, "give the subnet explicitly with --subnet "+e.subnet(2)) {
			t.Errorf("second bound network without --subnet: err %v, output %q; want the --subnet advice", err, out)
		}
		e.docker("network", "rm", again)
		e.network(t, again, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName, "--subnet", e.subnet(2))
		c3 := name + "-c3"
		e.container(t, c3, "--network", again)
		checkReach(t, e, c1, ip1, c3, e.inspectIP(t, c3, again))

		e.must(t, "rm", "-f", c1, c2, c3)
		for _, ip := range []string{ip1, ip2} {
			if _, ok := storeOwner(dataDir, cniName, ip); ok {
				t.Errorf("docker rm did not release %s from %s's store", ip, cniName)
			}
		}
		settle(t, func() bool { return len(bridgePorts(bridge)) == 0 })
		if got := bridgePorts(bridge); len(got) != 0 {
			t.Errorf("after docker rm, bridge %s still has ports %v", bridge, got)
		}
	})
}

// TestDockerIPAM: -d cni with Docker's built-in IPAM works for a generated
// network: the chain configures the address Docker's IPAM chose.
func TestDockerIPAM(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "dipam")
		e.network(t, name, "-d", s.driver, "--subnet", e.subnet(4))
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)
		checkInsideIP(t, e, c1, ip1)
		checkInsideIP(t, e, c2, ip2)
		checkReach(t, e, c1, ip1, c2, ip2)
	})
}
