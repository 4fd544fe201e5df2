package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// legacyRelease is the last release of docker-cni that kept its state as one
// JSON file per record; later releases import those files into their state
// database on first start.
const legacyRelease = "896a7c0"

// buildLegacy builds docker-cni at legacyRelease from this clone's history,
// once per machine (cached under /var/cache/docker-cni/legacy).
func buildLegacy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("/var/cache/docker-cni/legacy", legacyRelease)
	bin := filepath.Join(dir, "docker-cni")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	src := t.TempDir()
	ctx := context.Background()
	if out, err := run(ctx, "sh", "-c", "git -C \"$0\" archive "+legacyRelease+" | tar -x -C \"$1\"", s.repo, src); err != nil {
		t.Fatalf("check out release %s (this clone needs its history): %v\n%s", legacyRelease, err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := []string{"build", "-o", bin + ".tmp", "./cmd/docker-cni"}
	if out, err := runIn(ctx, src, "go", cmd...); err != nil {
		t.Fatalf("build release %s: %v\n%s", legacyRelease, err, out)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestUpgradeFromJSONState: a state dir written by the previous release, with
// a live container, is taken over by this one: the records are imported, the
// old files kept as a backup, the container keeps its network, and removing
// it releases everything.
func TestUpgradeFromJSONState(t *testing.T) {
	e := s.engines[0]
	old := buildLegacy(t)
	stateDir := filepath.Join(t.TempDir(), "state")
	s.d.stopFor(t)
	legacy, err := s.d.variant(old, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	legacy.legacy = true
	if err := legacy.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(legacy.stop)
	name := uniq(t, e, "upgrade")
	subnet := e.extraSubnet(0)
	e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet)
	netID := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
	c1, c2 := name+"-c1", name+"-c2"
	e.container(t, c1, "--network", name)
	ip1 := e.inspectIP(t, c1, name)
	ep1 := e.must(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+name+"\").EndpointID}}", c1)
	legacy.stop()
	if _, err := os.Stat(filepath.Join(stateDir, "endpoints", ep1+".json")); err != nil {
		t.Fatalf("the previous release did not write its JSON state as expected: %v", err)
	}

	up, err := s.d.variant(s.d.bin, stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.stop)
	if !up.logContains("imported the previous release's JSON state") {
		t.Error("the daemon did not say it imported the JSON state")
	}
	if _, err := os.Stat(filepath.Join(stateDir, "imported-json", "endpoints", ep1+".json")); err != nil {
		t.Errorf("the JSON records are not kept as a backup: %v", err)
	}
	if eps, err := up.records("endpoints"); err != nil || len(eps) != 1 || eps[0]["ID"] != ep1 {
		t.Fatalf("endpoints after the upgrade = %v (%v), want %s", eps, err, ep1)
	}
	e.container(t, c2, "--network", name)
	checkReach(t, e, c1, ip1, c2, e.inspectIP(t, c2, name))

	e.must(t, "rm", "-f", c1, c2)
	e.must(t, "network", "rm", name)
	// The daemon also holds records of other networks the engine has (it
	// rebuilds them at start): only this network's count.
	for _, table := range []string{"endpoints", "reservations", "networks", "pools"} {
		recs, err := up.records(table)
		if err != nil {
			t.Fatal(err)
		}
		if left := ofNetwork(recs, netID, subnet); len(left) != 0 {
			t.Errorf("%s left after removing the container and the network: %v", table, left)
		}
	}
}

// ofNetwork keeps the records of one network: its own (ID), its endpoints
// (NetworkID), its pools (Subnet) and their reservations (Address in it).
func ofNetwork(recs []map[string]any, netID, subnet string) []map[string]any {
	prefix, _ := netip.ParsePrefix(subnet)
	var out []map[string]any
	for _, r := range recs {
		addr, _ := netip.ParseAddr(fmt.Sprint(r["Address"]))
		if r["ID"] == netID || r["NetworkID"] == netID || r["Subnet"] == subnet || prefix.Contains(addr) {
			out = append(out, r)
		}
	}
	return out
}
