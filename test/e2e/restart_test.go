package e2e

import (
	"path/filepath"
	"testing"
)

// TestDaemonRestart: SIGTERM keeps live endpoints; after kill -9 and a
// restart, docker rm of a container made before still releases its address
// and its interface.
func TestDaemonRestart(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "restart")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(12))
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		nw := networkRecord(t, id)
		cniName, bridge := nw["CNINetwork"].(string), nw["BridgeName"].(string)
		dataDir := filepath.Join(s.d.stateDir, "ipam")
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)

		s.d.stopFor(t)
		if err := e.ping(c1, ip2); err != nil {
			t.Errorf("with docker-cni stopped by SIGTERM, containers lost their network: %v", err)
		}
		if err := s.d.start(); err != nil {
			t.Fatal(err)
		}
		s.d.kill9()
		if err := s.d.start(); err != nil {
			t.Fatal(err)
		}
		checkReach(t, e, c1, ip1, c2, ip2)
		e.must(t, "rm", "-f", c1)
		if _, ok := storeOwner(dataDir, cniName, ip1); ok {
			t.Errorf("after kill -9 and restart, docker rm did not release %s", ip1)
		}
		settle(t, func() bool { return len(bridgePorts(bridge)) == 1 })
		if ports := bridgePorts(bridge); len(ports) != 1 {
			t.Errorf("after kill -9 and restart, docker rm left ports on %s: %v", bridge, ports)
		}
		// A new container after the restart gets a fresh, working address.
		c3 := name + "-c3"
		e.container(t, c3, "--network", name)
		ip3 := e.inspectIP(t, c3, name)
		checkReach(t, e, c2, ip2, c3, ip3)
	})
}
