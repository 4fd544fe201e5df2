package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// poolCount is how many pools docker-cni holds.
func poolCount(t *testing.T) int {
	t.Helper()
	ps, err := s.d.records("pools")
	if err != nil {
		t.Fatal(err)
	}
	return len(ps)
}

// checkRefused runs `docker network create` expecting a failure whose
// message holds want, and checks nothing was left behind.
func checkRefused(t *testing.T, e engine, want string, args ...string) {
	t.Helper()
	name := uniq(t, e, "bad")
	before := poolCount(t)
	out, err := e.docker(append(append([]string{"network", "create"}, args...), name)...)
	if err == nil {
		e.docker("network", "rm", name)
		t.Fatalf("docker network create %v succeeded, want an error containing %q", args, want)
	}
	if !strings.Contains(out, want) {
		t.Errorf("docker network create %v: error\n  %s\nwant it to contain %q", args, out, want)
	}
	if ls, _ := e.docker("network", "ls", "-q", "--filter", "name=^"+name+"$"); ls != "" {
		t.Errorf("failed create left network %s", name)
	}
	if after := poolCount(t); after != before {
		t.Errorf("failed create left %d pool(s) in docker-cni", after-before)
	}
}

// TestCreateErrors: bad input reaches the docker command as a clear error
// and leaves nothing half-made.
func TestCreateErrors(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		d, ipam := []string{"-d", s.driver}, []string{"--ipam-driver", s.driver}
		bind := func(n string) []string { return append(append(d, ipam...), "--ipam-opt", "cni.network="+n) }

		t.Run("unknown conflist", func(t *testing.T) {
			checkRefused(t, e, `CNI network "e2e-nope" not found in `+s.d.confDir, bind("e2e-nope")...)
		})
		t.Run("invalid conflist", func(t *testing.T) {
			writeConflist(t, "50-e2e-broken.conflist", `{"cniVersion": "1.0.0", "name": "e2e-broken", "plugins": [`)
			checkRefused(t, e, "50-e2e-broken.conflist", bind("e2e-broken")...)
		})
		t.Run("missing plugin binary", func(t *testing.T) {
			name := "e2e-noplugin-" + e.name
			writeConflist(t, "51-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
			  {"type": "e2e-no-such-plugin", "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}]}`,
				name, e.subnet(5), filepath.Join(s.d.dir, "noplugin")))
			checkRefused(t, e, `plugin "e2e-no-such-plugin" not found in`, bind(name)...)
		})
		t.Run("unsupported ipam", func(t *testing.T) {
			name := "e2e-dhcp-" + e.name
			writeConflist(t, "52-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
			  {"type": "bridge", "bridge": "e2edhcp0", "ipam": {"type": "dhcp"}}]}`, name))
			checkRefused(t, e, `IPAM plugin dhcp is not supported: it leases an address for the container's interface`, bind(name)...)
		})
		t.Run("plugin with its own IPAM", func(t *testing.T) {
			name := "e2e-cilium-" + e.name
			writeConflist(t, "53-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "0.3.1", "name": %q, "plugins": [
			  {"type": "cilium-cni"}]}`, name))
			checkRefused(t, e, `is Cilium's: cilium-cni asks the Cilium agent, which allocates the address at ADD`, bind(name)...)
		})
		t.Run("agent-based plugin with an ipam section", func(t *testing.T) {
			name := "e2e-antrea-" + e.name
			writeConflist(t, "53-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "0.3.0", "name": %q, "plugins": [
			  {"type": "antrea", "ipam": {"type": "host-local"}}, {"type": "portmap", "capabilities": {"portMappings": true}}]}`, name))
			checkRefused(t, e, `is Antrea's: the antrea plugin forwards ADD over gRPC to antrea-agent`, bind(name)...)
		})
		t.Run("IPAM plugin whose ranges the conflist does not say", func(t *testing.T) {
			name := "e2e-calico-" + e.name
			writeConflist(t, "54-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "0.3.1", "name": %q, "plugins": [
			  {"type": "bridge", "ipam": {"type": "calico-ipam"}}]}`, name))
			checkRefused(t, e, `uses calico-ipam, which allocates from the IP pools in Calico's datastore, not from its configuration: give the CIDR of the IPv4 pool`, bind(name)...)
			// K8S_POD_* args would make calico-ipam record a pod that does
			// not exist: refused.
			checkRefused(t, e, `-o cni.args=k8s: CNI network "`+name+`" runs calico-ipam, which looks the pod up`,
				append(bind(name), "--subnet", e.subnet(11), "-o", "cni.args=k8s")...)
		})
		t.Run("bad cni.args", func(t *testing.T) {
			checkRefused(t, e, `option cni.args: "pods" is neither k8s, none nor KEY=value`, append(append(d, ipam...), "--subnet", e.subnet(10), "-o", "cni.args=pods")...)
		})
		t.Run("subnet clash with docker-cni network", func(t *testing.T) {
			first := uniq(t, e, "clash")
			e.network(t, first, append(append(d, ipam...), "--subnet", e.subnet(3))...)
			checkRefused(t, e, "overlaps "+e.subnet(3), append(append(d, ipam...), "--subnet", e.subnet(3))...)
		})
		t.Run("subnet clash with conflist", func(t *testing.T) {
			name := "e2e-clash-" + e.name
			writeConflist(t, "53-"+name+".conflist", podConflist(name, "e2eclash0", e.subnet(6), filepath.Join(s.d.dir, "clash")))
			checkRefused(t, e, fmt.Sprintf(`CNI network %q`, name), append(append(d, ipam...), "--subnet", e.subnet(6))...)
		})
		t.Run("binding only as -o", func(t *testing.T) {
			name := "e2e-oonly-" + e.name
			writeConflist(t, "54-"+name+".conflist", podConflist(name, "e2eoonly0", e.subnet(7), filepath.Join(s.d.dir, "oonly")))
			checkRefused(t, e, "needs --ipam-opt cni.network="+name, append(append(d, ipam...), "-o", "cni.network="+name)...)
		})
		t.Run("binding spellings disagree", func(t *testing.T) {
			name := "e2e-agree-" + e.name
			writeConflist(t, "55-"+name+".conflist", podConflist(name, "e2eagree0", e.subnet(8), filepath.Join(s.d.dir, "agree")))
			checkRefused(t, e, "disagrees with --ipam-opt cni.network="+name, append(bind(name), "-o", "cni.network=other")...)
		})
		t.Run("binding with Docker IPAM", func(t *testing.T) {
			name := "e2e-dockeripam-" + e.name
			writeConflist(t, "56-"+name+".conflist", podConflist(name, "e2edipam0", e.subnet(9), filepath.Join(s.d.dir, "dipam")))
			checkRefused(t, e, "must use --ipam-driver cni", append(d, "-o", "cni.network="+name)...)
		})
		t.Run("unknown driver option", func(t *testing.T) {
			checkRefused(t, e, "option e2e.nonsense is not supported", append(append(d, ipam...), "--subnet", e.subnet(10), "-o", "e2e.nonsense=1")...)
		})
	})
}

// TestJoinFailureRollsBack: when the chain fails at ADD, docker run fails
// with the plugin's error, and no interface, address or netns is left.
func TestJoinFailureRollsBack(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		cniName := "e2e-failing-" + e.name
		bridge := "e2efail" + e.name[:3]
		dataDir := filepath.Join(s.d.dir, "failing-"+e.name)
		freshBridge(t, bridge)
		// tuning with a sysctl that does not exist fails ADD after bridge
		// made the veth, the address and the masquerade rule.
		writeConflist(t, "60-"+cniName+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
		  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true,
		   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}},
		  {"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.e2e_no_such_sysctl": "1"}}]}`, cniName, bridge, e.subnet(11), dataDir))
		name := uniq(t, e, "fail")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName)
		ctr := name + "-c"
		t.Cleanup(func() { e.docker("rm", "-f", ctr) })
		out, err := e.docker("run", "--name", ctr, "--network", name, image, "true")
		if err == nil {
			t.Fatal("docker run succeeded on a failing chain")
		}
		for _, want := range []string{"join endpoint", "cni ADD " + cniName, "e2e_no_such_sysctl"} {
			if !strings.Contains(out, want) {
				t.Errorf("docker run error\n  %s\nwant it to contain %q", out, want)
			}
		}
		settle(t, func() bool { return len(bridgePorts(bridge)) == 0 })
		if ports := bridgePorts(bridge); len(ports) != 0 {
			t.Errorf("failed join left ports on %s: %v", bridge, ports)
		}
		entries, _ := os.ReadDir(filepath.Join(dataDir, cniName))
		for _, en := range entries {
			if !strings.HasPrefix(en.Name(), "last_reserved") && en.Name() != "lock" {
				t.Errorf("failed join left address %s reserved", en.Name())
			}
		}
		netns, _ := os.ReadDir(filepath.Join(s.d.runDir, "netns"))
		for _, n := range netns {
			if n.Name() != "ipam" {
				t.Errorf("failed join left scratch netns %s", n.Name())
			}
		}
		if n := natRulesMentioning(t, cniName); n != 0 {
			t.Errorf("failed join left %d nat rules of %s", n, cniName)
		}
	})
}
