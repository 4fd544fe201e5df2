package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestStaticAddresses: --ip and --ip6 go through the IPAM driver into the
// CNI store; an address already taken is a clear error.
func TestStaticAddresses(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "static")
		prefix := strings.TrimSuffix(e.subnet(20), "0/24")
		v6 := "fd00:231:" + strings.Split(e.subnet(20), ".")[2] + "::/64"
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipv6", "--subnet", e.subnet(20), "--subnet", v6)
		c := name + "-c"
		ip4, ip6 := prefix+"77", strings.TrimSuffix(v6, "/64")+"77"
		e.container(t, c, "--network", name, "--ip", ip4, "--ip6", ip6)
		if got := e.inspectIP(t, c, name); got != ip4 {
			t.Errorf("--ip %s: docker inspect says %s", ip4, got)
		}
		checkInsideIP(t, e, c, ip4)
		if out := e.must(t, "exec", c, "ip", "-6", "-o", "addr", "show", "dev", "eth0"); !strings.Contains(out, ip6+"/64") {
			t.Errorf("--ip6 %s: inside the container: %q", ip6, out)
		}
		out, err := e.docker("run", "--rm", "--network", name, "--ip", ip4, image, "true")
		if err == nil || !strings.Contains(out, "reserve "+ip4) {
			t.Errorf("--ip of a taken address: err %v, %q; want a clear error naming %s", err, out, ip4)
		}
	})
}

// TestEmbeddedDNS: Docker's embedded DNS resolves container names and
// --network-alias aliases on a docker-cni network.
func TestEmbeddedDNS(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "dns")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(21))
		srv, cli := name+"-srv", name+"-cli"
		e.container(t, srv, "--network", name, "--network-alias", "db")
		// --dns keeps any name the embedded server forwards on the test's
		// own bridge (nothing answers there) instead of the host's resolvers.
		gw := strings.TrimSuffix(e.subnet(21), "0/24") + "1"
		e.container(t, cli, "--network", name, "--dns", gw, "--hostname", "clienthost", "--add-host", "e2e-extra:10.231.255.254")
		ip := e.inspectIP(t, srv, name)
		for _, n := range []string{srv, "db"} {
			out, err := e.docker("exec", cli, "nslookup", n)
			if err != nil || !strings.Contains(out, ip) {
				t.Errorf("nslookup %s from %s: %v\n%s\nwant %s", n, cli, err, out, ip)
			}
			if err := e.ping(cli, n); err != nil {
				t.Error(err)
			}
		}
		if out := e.must(t, "exec", cli, "hostname"); out != "clienthost" {
			t.Errorf("--hostname: %q", out)
		}
		if out := e.must(t, "exec", cli, "cat", "/etc/hosts"); !strings.Contains(out, "e2e-extra") {
			t.Errorf("--add-host missing from /etc/hosts:\n%s", out)
		}
	})
}

// TestNetworkOptions: --internal, the MTU and bridge name options of a
// generated network.
func TestNetworkOptions(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "opts")
		bridge := "e2eopt" + e.name[:3]
		freshBridge(t, bridge)
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(22), "--internal",
			"-o", "com.docker.network.driver.mtu=1400", "-o", "com.docker.network.bridge.name="+bridge)
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		if !linkExists(bridge) {
			t.Errorf("bridge %s not made", bridge)
		}
		if out := strings.TrimSpace(e.must(t, "exec", c1, "cat", "/sys/class/net/eth0/mtu")); out != "1400" {
			t.Errorf("MTU inside: %s, want 1400", out)
		}
		if out := e.must(t, "exec", c1, "ip", "-4", "route"); strings.Contains(out, "default") {
			t.Errorf("--internal network gave a default route:\n%s", out)
		}
		checkReach(t, e, c1, e.inspectIP(t, c1, name), c2, e.inspectIP(t, c2, name))
		if n := natRulesMentioning(t, e.subnet(22)); n != 0 {
			t.Errorf("--internal network has %d masquerade rules", n)
		}
	})
}

// TestWithDockerBridge: one container on a network of Docker's own bridge
// driver and on a docker-cni network reaches peers on both, whichever it
// joins first: started on the bridge network and connected to docker-cni's,
// started on docker-cni's and connected to the bridge network, and created
// on docker-cni's and connected to the bridge network before it starts (as
// compose does). libnetwork must know docker-cni's interface to name its
// own after it (handover and move modes).
func TestWithDockerBridge(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		cniNet, brNet := uniq(t, e, "mixcni"), uniq(t, e, "mixbr")
		e.network(t, cniNet, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(23))
		e.network(t, brNet, "-d", "bridge", "--subnet", e.subnet(24))
		if e.name == "current" {
			// The test's current engine runs with --iptables=false beside
			// 20.10, whose FORWARD policy is DROP: its own bridge networks
			// need an accept rule here, docker-cni's are not involved.
			for _, dir := range []string{"-s", "-d"} {
				rule := []string{"DOCKER-USER", dir, e.subnet(24), "-j", "ACCEPT"}
				run(t.Context(), "iptables", append([]string{"-I"}, rule...)...)
				t.Cleanup(func() { run(context.Background(), "iptables", append([]string{"-D"}, rule...)...) })
			}
		}
		peerCNI, peerBr := cniNet+"-peer", brNet+"-peer"
		e.container(t, peerCNI, "--network", cniNet)
		e.container(t, peerBr, "--network", brNet)
		checkBoth := func(c string) {
			t.Helper()
			if err := e.ping(c, e.inspectIP(t, peerCNI, cniNet)); err != nil {
				t.Error(err)
			}
			if err := e.ping(c, e.inspectIP(t, peerBr, brNet)); err != nil {
				t.Error(err)
			}
			checkInsideIP(t, e, c, e.inspectIP(t, c, cniNet))
			checkInsideIP(t, e, c, e.inspectIP(t, c, brNet))
		}

		bridgeFirst := cniNet + "-bf"
		e.container(t, bridgeFirst, "--network", brNet)
		e.must(t, "network", "connect", cniNet, bridgeFirst)
		checkBoth(bridgeFirst)

		cniFirst := cniNet + "-cf"
		e.container(t, cniFirst, "--network", cniNet)
		e.must(t, "network", "connect", brNet, cniFirst)
		checkBoth(cniFirst)
		// Docker picks the default route among the networks (gw-priority,
		// then network name: the bridge network here), as between two
		// networks of its own; --gw-priority (API 1.48+) moves it.
		cniGW, brGW := strings.TrimSuffix(e.subnet(23), "0/24")+"1", strings.TrimSuffix(e.subnet(24), "0/24")+"1"
		if out := e.must(t, "exec", cniFirst, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+brGW) || strings.Count(out, "default") != 1 {
			t.Errorf("default routes of %s: %q, want one, via %s", cniFirst, out, brGW)
		}
		if e.name == "current" {
			prio := cniNet + "-prio"
			e.container(t, prio, "--network", brNet)
			e.must(t, "network", "connect", "--gw-priority", "10", "--driver-opt", "com.docker.network.endpoint.ifname=cni7", cniNet, prio)
			if out, err := e.docker("exec", prio, "ip", "-4", "addr", "show", "cni7"); err != nil || !strings.Contains(out, e.inspectIP(t, prio, cniNet)+"/") {
				t.Errorf("--driver-opt com.docker.network.endpoint.ifname=cni7: %v\n%s", err, out)
			}
			if out := e.must(t, "exec", prio, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+cniGW) || strings.Count(out, "default") != 1 {
				t.Errorf("default routes of %s after connect --gw-priority 10: %q, want one, via %s", prio, out, cniGW)
			}
		}

		created := cniNet + "-cr"
		e.must(t, "create", "--name", created, "--network", cniNet, image, "sleep", "3600")
		t.Cleanup(func() { e.docker("rm", "-f", created) })
		e.must(t, "network", "connect", brNet, created)
		e.must(t, "start", created)
		checkBoth(created)
		e.must(t, "network", "disconnect", cniNet, created)
		if out := e.must(t, "exec", created, "ip", "-o", "link"); strings.Count(out, "@if") != 1 {
			t.Errorf("after disconnect %s has links:\n%s", created, out)
		}
	})
}

// TestJoinModeDirect: -o cni.join=direct keeps the chain's interface where
// the chain made it (everything it set there stays). Engines that make the
// netns after Join (20.10) refuse it with a message naming the option.
func TestJoinModeDirect(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "direct")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(28), "-o", "cni.join=direct")
		if inspect := e.must(t, "network", "inspect", "-f", "{{index .Options \"cni.join\"}}", name); inspect != "direct" {
			t.Errorf("docker network inspect: cni.join = %q", inspect)
		}
		c1, c2 := name+"-c1", name+"-c2"
		if e.joinMode == "move" {
			out, err := e.docker("run", "-d", "--name", c1, "--network", name, image, "sleep", "3600")
			t.Cleanup(func() { e.docker("rm", "-f", c1) })
			if err == nil || !strings.Contains(out, "cni.join=direct") {
				t.Errorf("docker run on a cni.join=direct network on %s: err %v, output\n%s\nwant a refusal naming cni.join=direct", e.name, err, out)
			}
			return
		}
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)
		checkInsideIP(t, e, c1, ip1)
		checkReach(t, e, c1, ip1, c2, ip2)
		if mode := endpointOf(t, ip1)["Attachment"].(map[string]any)["Mode"]; mode != "direct" {
			t.Errorf("join mode = %v, want direct", mode)
		}
	})
}

// TestMACAddress: --mac-address is set on the container's interface (the
// generated chain's bridge plugin, through its "mac" capability), and
// without it docker inspect still shows the MAC the container really has.
func TestMACAddress(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "mac")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(26))
		set, auto := name+"-set", name+"-auto"
		ctrs := []string{auto}
		e.container(t, auto, "--network", name)
		// The docker CLI sends --mac-address with --network only to API
		// 1.44+ engines; 20.10 speaks 1.41.
		if e.name != "debian" {
			e.container(t, set, "--network", name, "--mac-address", "02:42:e2:e2:00:26")
			ctrs = append(ctrs, set)
		}
		for _, c := range ctrs {
			inspect := e.must(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).MacAddress}}", name), c)
			inside := strings.TrimSpace(e.must(t, "exec", c, "cat", "/sys/class/net/eth0/address"))
			if inspect == "" || inspect != inside {
				t.Errorf("%s: docker inspect MAC %q, inside %q", c, inspect, inside)
			}
			if c == set && inside != "02:42:e2:e2:00:26" {
				t.Errorf("--mac-address 02:42:e2:e2:00:26: the container has %s", inside)
			}
		}
	})
}

// TestMoreNetworkFlags: network labels, --ip-range and a host port range
// behave as with Docker's bridge driver; IPv6 gets its default route.
func TestMoreNetworkFlags(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "flags")
		prefix := strings.TrimSuffix(e.subnet(27), "0/24")
		v6 := "fd00:231:" + strings.Split(e.subnet(27), ".")[2] + "::/64"
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--label", "team=e2e",
			"--subnet", e.subnet(27), "--ip-range", prefix+"128/25", "--ipv6", "--subnet", v6)
		if got := e.must(t, "network", "inspect", "-f", `{{index .Labels "team"}}`, name); got != "e2e" {
			t.Errorf("network label: %q", got)
		}
		c := name + "-c"
		first := 18300 + e.net
		e.container(t, c, "--network", name, "-p", fmt.Sprintf("%d-%d:80", first, first+5))
		ip := e.inspectIP(t, c, name)
		var last int
		fmt.Sscanf(strings.TrimPrefix(ip, prefix), "%d", &last)
		if last < 128 {
			t.Errorf("--ip-range %s128/25: container got %s", prefix, ip)
		}
		if out := e.must(t, "exec", c, "ip", "-6", "route", "show", "default"); !strings.Contains(out, "via "+strings.TrimSuffix(v6, "/64")+"1") {
			t.Errorf("IPv6 default route: %q", out)
		}
		ports := lsPorts(t, ip)
		if len(ports) != 1 || ports[0]["hostPort"].(float64) < float64(first) || ports[0]["hostPort"].(float64) > float64(first+5) {
			t.Errorf("-p %d-%d:80 published %v", first, first+5, ports)
		}
	})
}
