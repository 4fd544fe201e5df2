package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// TestStaticIPAMBinding: a conflist whose IPAM plugin is not host-local
// (here the reference static plugin, run on its own) reserves Docker's
// addresses: the container gets the plugin's address and its gateway; the
// plugin keeps no store and gives everyone that address, so a second
// container is refused with a message saying why, until the first is gone.
func TestStaticIPAMBinding(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		subnet := netip.MustParsePrefix(e.extraSubnet(1))
		addr := subnet.Addr().Next().Next().Next().Next().Next() // .5
		gw := subnet.Addr().Next()
		cniName, bridge := "e2e-static-"+e.name, "e2estatic"+e.name[:3]
		freshBridge(t, bridge)
		writeConflist(t, "30-"+cniName+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
		  {"type": "bridge", "bridge": %q, "isGateway": true,
		   "ipam": {"type": "static", "addresses": [{"address": "%s/%d", "gateway": %q}], "routes": [{"dst": "0.0.0.0/0"}]}}]}`,
			cniName, bridge, addr, subnet.Bits(), gw))
		name := uniq(t, e, "static")
		if out, err := s.d.cliOut("network", "create", name, "--bind", cniName, "--cni-conf-dir", s.d.confDir,
			"--docker-host", e.host, "--driver", s.driver); err != nil {
			t.Fatalf("docker-cni network create: %v\n%s", err, out)
		}
		t.Cleanup(func() { e.docker("network", "rm", name) })
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		if ip := e.inspectIP(t, c1, name); ip != addr.String() {
			t.Errorf("container address %s, want the static plugin's %s", ip, addr)
		}
		if out, err := run(t.Context(), "busybox", "ping", "-c", "1", "-W", "3", addr.String()); err != nil {
			t.Errorf("host -> container %s through the bridge: %v\n%s", addr, err, out)
		}
		out, err := e.docker("run", "-d", "--name", c2, "--network", name, image, "sleep", "600")
		t.Cleanup(func() { e.docker("rm", "-f", c2) })
		if err == nil || !strings.Contains(out, "handed out "+addr.String()+", which another Docker endpoint holds") {
			t.Errorf("second container on a static address: %v\n%s", err, out)
		}
		e.docker("rm", "-f", c2)
		e.must(t, "rm", "-f", c1)
		e.container(t, c2, "--network", name)
		if ip := e.inspectIP(t, c2, name); ip != addr.String() {
			t.Errorf("after the first container left, the second got %s, want %s", ip, addr)
		}
		if rs, _ := s.d.records("reservations"); len(filterPool(rs, cniName)) != 1 {
			t.Errorf("reservations of %s: %v, want one", cniName, rs)
		}
	})
}

// filterPool keeps the reservations of pools of a CNI network.
func filterPool(rs []map[string]any, cniName string) []map[string]any {
	var out []map[string]any
	for _, r := range rs {
		if id, _ := r["PoolID"].(string); strings.HasPrefix(id, cniName+"/") {
			out = append(out, r)
		}
	}
	return out
}
