package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// parallelRuns is how many containers TestParallelRuns starts at once.
const parallelRuns = 50

// TestParallelRuns: 50 `docker run -d` at once on one docker-cni network
// all start, each with its own address, the one it really has; a sample of
// pairs reach each other; 50 `docker rm -f` at once leave no endpoint, no
// reservation, no address in the host-local store, no host link and no
// bridge port behind, and the network can then be removed.
func TestParallelRuns(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "par")
		subnet := netip.MustParsePrefix(e.extraSubnet(2))
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet.String())
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		nw := networkRecord(t, id)
		if nw == nil {
			t.Fatalf("docker-cni has no record of network %s", id)
		}
		cniName, bridge := nw["CNINetwork"].(string), nw["BridgeName"].(string)
		linksBefore := hostLinks(t, "dcni")

		ctrs := make([]string, parallelRuns)
		for i := range ctrs {
			ctrs[i] = fmt.Sprintf("%s-%02d", name, i)
		}
		t.Cleanup(func() { e.docker(append([]string{"rm", "-f"}, ctrs...)...) })
		for i, err := range parallel(ctrs, func(c string) error {
			out, err := e.docker("run", "-d", "--name", c, "--network", name, image, "sleep", "3600")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}) {
			if err != nil {
				t.Errorf("docker run %s (one of %d at once): %v", ctrs[i], parallelRuns, err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}

		// All running, each with its own address in the subnet.
		format := fmt.Sprintf("{{.Name}} {{.State.Running}} {{(index .NetworkSettings.Networks %q).IPAddress}} {{(index .NetworkSettings.Networks %q).EndpointID}}", name, name)
		out := e.must(t, append([]string{"inspect", "-f", format}, ctrs...)...)
		ips := map[string]string{}   // container -> address
		owner := map[string]string{} // address -> container
		var endpoints []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) != 4 {
				t.Errorf("docker inspect line %q: want name, running, address, endpoint", line)
				continue
			}
			c, running, ip := strings.TrimPrefix(f[0], "/"), f[1], f[2]
			endpoints = append(endpoints, f[3])
			if running != "true" {
				t.Errorf("%s is not running after docker run -d", c)
			}
			addr, err := netip.ParseAddr(ip)
			if err != nil || !subnet.Contains(addr) {
				t.Errorf("%s: docker inspect address %q, want one in %s", c, ip, subnet)
				continue
			}
			if prev, dup := owner[ip]; dup {
				t.Errorf("%s and %s both have %s", prev, c, ip)
			}
			owner[ip], ips[c] = c, ip
		}
		if len(ips) != parallelRuns {
			t.Fatalf("%d containers with an address, want %d", len(ips), parallelRuns)
		}
		// Each has the address docker inspect reports on its interface.
		for i, err := range parallel(ctrs, func(c string) error {
			out, err := e.docker("exec", c, "ip", "-4", "-o", "addr", "show")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			if !strings.Contains(out, " "+ips[c]+"/") {
				return fmt.Errorf("docker inspect says %s, inside it has:\n%s", ips[c], out)
			}
			return nil
		}) {
			if err != nil {
				t.Errorf("address inside %s: %v", ctrs[i], err)
			}
		}
		if ports := bridgePorts(bridge); len(ports) != parallelRuns {
			t.Errorf("bridge %s has %d ports, want %d", bridge, len(ports), parallelRuns)
		}
		// A sample of pairs reach each other.
		for range 10 {
			p := rand.Perm(parallelRuns)
			a, b := ctrs[p[0]], ctrs[p[1]]
			checkReach(t, e, a, ips[a], b, ips[b])
		}

		for i, err := range parallel(ctrs, func(c string) error {
			if out, err := e.docker("rm", "-f", c); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}) {
			if err != nil {
				t.Errorf("docker rm -f %s (one of %d at once): %v", ctrs[i], parallelRuns, err)
			}
		}

		// Nothing of the 50 is left.
		eps, err := s.d.records("endpoints")
		if err != nil {
			t.Fatal(err)
		}
		for _, ep := range eps {
			if ep["NetworkID"] == id {
				t.Errorf("after docker rm -f, docker-cni still holds endpoint %v (%v)", ep["ID"], ep["Addresses"])
			}
		}
		rs, err := s.d.records("reservations")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range filterPool(rs, cniName) {
			t.Errorf("after docker rm -f, docker-cni still reserves %v in pool %v (owner %v)", r["Address"], r["PoolID"], r["OwnerID"])
		}
		if left := storeAddresses(t, cniName); len(left) != 0 {
			t.Errorf("after docker rm -f, host-local's store %s still holds %v", cniName, left)
		}
		// docker-cni deletes handed-over interfaces in the background (the
		// kernel takes its time over a veth): give it a few seconds.
		settle(t, func() bool {
			for l := range hostLinks(t, "dcni") {
				if !linksBefore[l] {
					return false
				}
			}
			return len(bridgePorts(bridge)) == 0
		})
		for l := range hostLinks(t, "dcni") {
			if !linksBefore[l] {
				t.Errorf("after docker rm -f, host link %s is left", l)
			}
		}
		for _, ep := range endpoints {
			if l := "dcni" + ep[:min(11, len(ep))]; linkExists(l) {
				t.Errorf("after docker rm -f, endpoint %.12s's host link %s is left", ep, l)
			}
		}
		if ports := bridgePorts(bridge); len(ports) != 0 {
			t.Errorf("after docker rm -f, bridge %s still has ports %v", bridge, ports)
		}

		restarted, err := e.removeNetwork(name)
		if err != nil {
			t.Fatalf("after the parallel runs: %v", err)
		}
		if restarted {
			t.Logf("%s: docker network rm said %q with no container left on %s (moby/moby#42119); the engine was restarted, which corrects the count", e.name, staleEndpointCount, name)
		}
		if networkRecord(t, id) != nil {
			t.Errorf("network rm left docker-cni's record of %s", id)
		}
		if linkExists(bridge) {
			t.Errorf("network rm left bridge %s", bridge)
		}
		pools, _ := s.d.records("pools")
		for _, p := range pools {
			if p["Subnet"] == subnet.String() {
				t.Errorf("network rm left pool %v", p["ID"])
			}
		}
	})
}

// settle waits up to 10 s for what docker-cni finishes in the background
// after a call returned (the deletion of handed-over interfaces).
func settle(t *testing.T, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !done(); {
		time.Sleep(100 * time.Millisecond)
	}
}

// parallel runs fn on every item at once and returns the errors in the
// items' order.
func parallel(items []string, fn func(string) error) []error {
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Go(func() { errs[i] = fn(it) })
	}
	wg.Wait()
	return errs
}

// hostLinks is the set of host links whose name starts with prefix, from
// `ip -o link`.
func hostLinks(t *testing.T, prefix string) map[string]bool {
	t.Helper()
	out, err := run(t.Context(), "ip", "-o", "link")
	if err != nil {
		t.Fatalf("ip -o link: %v\n%s", err, out)
	}
	links := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		// "7: dcni1234@if6: <...": the name is the second field.
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if strings.HasPrefix(name, prefix) {
			links[name] = true
		}
	}
	return links
}

// storeAddresses lists the addresses host-local holds in the store of a
// generated network (state-dir/ipam/<CNI network>/).
func storeAddresses(t *testing.T, cniName string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.d.stateDir, "ipam", cniName))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var addrs []string
	for _, en := range entries {
		if _, err := netip.ParseAddr(en.Name()); err == nil {
			addrs = append(addrs, en.Name())
		}
	}
	return addrs
}
