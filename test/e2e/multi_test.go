package e2e

import (
	"strings"
	"testing"
)

// TestTwoNetworks: a container on two docker-cni networks has eth0 and
// eth1, each with the address docker inspect shows, keeps the default route
// of the first, reaches both, and `docker network disconnect` removes eth1
// and releases its address.
func TestTwoNetworks(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		a, b := uniq(t, e, "neta"), uniq(t, e, "netb")
		e.network(t, a, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(14))
		e.network(t, b, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(15))
		nwB := networkRecord(t, e.must(t, "network", "inspect", "-f", "{{.Id}}", b))
		c, peer := a+"-c", b+"-peer"
		e.container(t, c, "--network", a)
		e.container(t, peer, "--network", b)
		e.must(t, "network", "connect", b, c)
		ipA, ipB, ipPeer := e.inspectIP(t, c, a), e.inspectIP(t, c, b), e.inspectIP(t, peer, b)

		for ifname, ip := range map[string]string{"eth0": ipA, "eth1": ipB} {
			out := e.must(t, "exec", c, "ip", "-4", "-o", "addr", "show", "dev", ifname)
			if !strings.Contains(out, " "+ip+"/") {
				t.Errorf("%s of %s: want %s, got %q", ifname, c, ip, out)
			}
		}
		gwA := strings.TrimSuffix(e.subnet(14), "0/24") + "1"
		if out := e.must(t, "exec", c, "ip", "-4", "route", "show", "default"); !strings.Contains(out, "via "+gwA) {
			t.Errorf("default route of %s: want via %s (first network), got %q", c, gwA, out)
		}
		if err := e.ping(c, ipPeer); err != nil {
			t.Error(err)
		}
		if err := e.ping(peer, ipB); err != nil {
			t.Error(err)
		}

		e.must(t, "network", "disconnect", b, c)
		if out, _ := e.docker("exec", c, "ip", "link", "show", "eth1"); !strings.Contains(out, "does not exist") && !strings.Contains(out, "can't find device") {
			t.Errorf("after disconnect, eth1 of %s: %q", c, out)
		}
		if _, ok := storeOwner(s.d.stateDir+"/ipam", nwB["CNINetwork"].(string), ipB); ok {
			t.Errorf("after disconnect, %s is still reserved", ipB)
		}
		if err := e.ping(c, strings.TrimSuffix(e.subnet(14), "0/24")+"1"); err != nil {
			t.Errorf("after disconnect, eth0 broke: %v", err)
		}
	})
}
