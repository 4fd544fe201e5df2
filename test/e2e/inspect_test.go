package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
)

// networkOptions is what docker network inspect shows under Options.
func networkOptions(t *testing.T, e engine, name string) map[string]string {
	t.Helper()
	var opts map[string]string
	if err := json.Unmarshal([]byte(e.must(t, "network", "inspect", "-f", "{{json .Options}}", name)), &opts); err != nil {
		t.Fatalf("docker network inspect %s: %v", name, err)
	}
	return opts
}

// TestInspectShowsBinding: given as -o options, the CNI network and its
// spec version show in docker network inspect, and they are true: a
// generated network is written at that version, a bound one must declare
// it, and values that disagree are refused.
func TestInspectShowsBinding(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		gen := uniq(t, e, "ver")
		e.network(t, gen, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(30), "-o", "cni.version=0.4.0")
		if v := networkOptions(t, e, gen)["cni.version"]; v != "0.4.0" {
			t.Errorf("inspect cni.version = %q, want 0.4.0", v)
		}
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", gen)
		nw := networkRecord(t, id)
		if nw == nil {
			t.Fatalf("docker-cni has no record of network %s (%s)", gen, id)
		}
		list, _ := nw["Conflist"].(map[string]any)
		if nw["CNIVersion"] != "0.4.0" || list["cniVersion"] != "0.4.0" {
			t.Errorf("docker-cni record: version %v, conflist cniVersion %v; want 0.4.0", nw["CNIVersion"], list["cniVersion"])
		}
		c := gen + "-c"
		e.container(t, c, "--network", gen)
		ip := e.inspectIP(t, c, gen)
		checkInsideIP(t, e, c, ip)
		if row := lsRow(t, ip); row["CNIVersion"] != "0.4.0" {
			t.Errorf("docker-cni ls --json: CNIVersion %v, want 0.4.0", row["CNIVersion"])
		}

		cniName := fmt.Sprintf("e2e-%s-verpods", e.name)
		bridge := fmt.Sprintf("e2e-%s-vbr", e.name)
		freshBridge(t, bridge)
		writeConflist(t, "10-"+cniName+".conflist", podConflist(cniName, bridge, e.subnet(31), filepath.Join(s.d.dir, "hostlocal-ver-"+e.name)))
		bound := uniq(t, e, "verbound")
		e.network(t, bound, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(31),
			"--ipam-opt", "cni.network="+cniName, "-o", "cni.network="+cniName, "-o", "cni.version=1.0.0")
		opts := networkOptions(t, e, bound)
		if opts["cni.network"] != cniName || opts["cni.version"] != "1.0.0" {
			t.Errorf("inspect options = %v, want cni.network=%s and cni.version=1.0.0", opts, cniName)
		}
		if nw := networkRecord(t, e.must(t, "network", "inspect", "-f", "{{.Id}}", bound)); nw == nil || nw["CNINetwork"] != cniName || nw["CNIVersion"] != "1.0.0" {
			t.Errorf("docker-cni record of %s = %v, want CNI network %s at 1.0.0", bound, nw, cniName)
		}

		checkRefused(t, e, "-o cni.version=0.4.0 disagrees with CNI network", "-d", s.driver, "--ipam-driver", s.driver,
			"--subnet", e.subnet(31), "--ipam-opt", "cni.network="+cniName, "-o", "cni.version=0.4.0")
		checkRefused(t, e, `option cni.version: "0.2.0" is not a CNI spec version`, "-d", s.driver, "--ipam-driver", s.driver,
			"--subnet", e.subnet(32), "-o", "cni.version=0.2.0")
		// The generated chain runs at a version every plugin of it speaks
		// (the lean chain: 0.3.1 too), and is refused, naming the plugin,
		// at one they do not (Debian's plugins stop at 1.0.0).
		v031 := uniq(t, e, "v031")
		e.network(t, v031, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(32), "-o", "cni.version=0.3.1")
		e.must(t, "network", "rm", v031)
		checkRefused(t, e, "plugin bridge", "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(32), "-o", "cni.version=1.1.0")
	})
}
