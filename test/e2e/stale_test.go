package e2e

import (
	"testing"
	"time"
)

// TestStaleNetwork: when docker-cni is down at `docker network rm`, Docker
// drops the network without DeleteNetwork or ReleasePool. Once docker-cni
// is back, it finds out from the engines and frees the pool, so the subnet
// can be used again.
func TestStaleNetwork(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "stale")
		subnet := e.subnet(13)
		e.must(t, "network", "create", "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet, name)
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		nw := networkRecord(t, id)
		if nw == nil {
			t.Fatalf("no docker-cni record of %s", id)
		}
		s.d.stopFor(t)
		out, err := e.docker("network", "rm", name)
		if startErr := s.d.start(); startErr != nil {
			t.Fatal(startErr)
		}
		if err != nil {
			t.Fatalf("docker network rm with docker-cni down: %v: %s (engines seen so far drop the network after ~45s)", err, out)
		}
		deadline := time.Now().Add(90 * time.Second)
		for networkRecord(t, id) != nil {
			if time.Now().After(deadline) {
				t.Fatalf("docker-cni still holds network %s 90s after Docker dropped it", id)
			}
			time.Sleep(500 * time.Millisecond)
		}
		again := name + "-again"
		e.network(t, again, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet)
		c := again + "-c"
		e.container(t, c, "--network", again)
		checkInsideIP(t, e, c, e.inspectIP(t, c, again))
	})
}
