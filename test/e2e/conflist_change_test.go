package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConflistChange: a bound conflist changed while endpoints are live is
// used by new joins, joined containers keep theirs (and their DEL works);
// a removed conflist leaves the network on its last copy.
func TestConflistChange(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		cniName := "e2e-change-" + e.name
		bridge := "e2echg" + e.name[:3]
		dataDir := filepath.Join(s.d.dir, "change-"+e.name)
		freshBridge(t, bridge)
		conf := podConflist(cniName, bridge, e.subnet(18), dataDir)
		path := writeConflist(t, "30-"+cniName+".conflist", conf)
		name := uniq(t, e, "chg")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName)
		c1, c2, c3 := name+"-c1", name+"-c2", name+"-c3"
		e.container(t, c1, "--network", name)

		changed := strings.Replace(conf, `"hairpinMode": true,`, `"hairpinMode": true, "mtu": 1400,`, 1)
		if changed == conf {
			t.Fatal("test conflist has no hairpinMode to anchor the change")
		}
		if err := os.WriteFile(path, []byte(changed), 0o644); err != nil {
			t.Fatal(err)
		}
		e.container(t, c2, "--network", name)
		mtu := func(c string) string {
			out := e.must(t, "exec", c, "cat", "/sys/class/net/eth0/mtu")
			return strings.TrimSpace(out)
		}
		if got := mtu(c2); got != "1400" {
			t.Errorf("container joined after the change: MTU %s, want 1400 from the new conflist", got)
		}
		if got := mtu(c1); got != "1500" {
			t.Errorf("container joined before the change: MTU %s, want 1500", got)
		}
		if !s.d.logContains("bound conflist changed; new joins use it") {
			t.Error("the daemon did not tell the user the conflist changed")
		}

		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		e.container(t, c3, "--network", name)
		ip1, ip3 := e.inspectIP(t, c1, name), e.inspectIP(t, c3, name)
		checkReach(t, e, c1, ip1, c3, ip3)
		if !s.d.logContains("bound conflist is gone from the conf dir") {
			t.Error("the daemon did not tell the user the conflist is gone")
		}
		e.must(t, "rm", "-f", c1, c2, c3)
		settle(t, func() bool { return len(bridgePorts(bridge)) == 0 })
		if ports := bridgePorts(bridge); len(ports) != 0 {
			t.Errorf("after docker rm, %s still has ports %v", bridge, ports)
		}
		entries, _ := os.ReadDir(filepath.Join(dataDir, cniName))
		for _, en := range entries {
			if !strings.HasPrefix(en.Name(), "last_reserved") && en.Name() != "lock" {
				t.Errorf("after docker rm, %s is still reserved", en.Name())
			}
		}
	})
}
