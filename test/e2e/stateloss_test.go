package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stateLoss is one way docker-cni's state database is lost while it is
// down and containers run.
type stateLoss struct {
	name string
	// do damages the stopped daemon's state dir.
	do func(t *testing.T, stateDir string)
	// logged is what the daemon must log at its next start.
	logged string
}

var stateLosses = []stateLoss{
	{"corrupt", corruptDB, "state database was corrupt: moved aside"},
	{"deleted", func(t *testing.T, dir string) { mustRemove(t, filepath.Join(dir, "state.db")) }, "rebuilt records docker-cni had lost"},
	{"wiped", func(t *testing.T, dir string) { mustRemove(t, dir) }, "rebuilt records docker-cni had lost"},
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

// corruptDB writes random bytes over the database's two meta pages and
// four random pages, as a torn write or a bad disk would.
func corruptDB(t *testing.T, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "state.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	const page = 4096
	r := rand.New(rand.NewPCG(uint64(fi.Size()), 7))
	buf := make([]byte, page)
	for _, p := range []int64{0, 1, r.Int64N(fi.Size() / page), r.Int64N(fi.Size() / page), r.Int64N(fi.Size() / page), r.Int64N(fi.Size() / page)} {
		for i := range buf {
			buf[i] = byte(r.UintN(256))
		}
		if _, err := f.WriteAt(buf, p*page); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStateLoss: docker-cni's state database corrupted, deleted, or its
// whole state dir wiped while it is down and containers run, on a
// generated network (whose IPAM store lives in the state dir) and on a
// network bound to a conflist (whose store does not). At its next start
// docker-cni rebuilds its records from the engines, the IPAM stores and
// the CNI cache: the running containers keep their network, a new
// container on each old network starts with an address no one holds and
// reaches the old ones, and removing every container and both networks
// leaves nothing behind.
func TestStateLoss(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		for i, loss := range stateLosses {
			t.Run(loss.name, func(t *testing.T) { testStateLoss(t, e, i, loss) })
		}
	})
}

func testStateLoss(t *testing.T, e engine, i int, loss stateLoss) {
	gen := uniq(t, e, "sl-gen")
	genSubnet := fmt.Sprintf("10.253.%d.0/24", e.net/16*4+i)
	e.network(t, gen, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", genSubnet, "-o", "cni.version=1.0.0")
	bound := newFaultNet(t, e, 5, fmt.Sprintf("sl%d", i))
	genID := e.must(t, "network", "inspect", "-f", "{{.Id}}", gen)
	boundID := e.must(t, "network", "inspect", "-f", "{{.Id}}", bound.name)
	old := map[string]string{}
	for _, c := range []string{"g1", "g2"} {
		name := uniq(t, e, "sl-"+c)
		e.container(t, name, "--network", gen)
		old[name] = e.inspectIP(t, name, gen)
	}
	b1 := uniq(t, e, "sl-b1")
	bound.run(t, b1)

	s.d.stopFor(t)
	loss.do(t, s.d.stateDir)
	if err := s.d.start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to log "+loss.logged, func() bool { return s.d.logContains(loss.logged) })

	// Running containers keep their network; new ones start on the old
	// networks, get addresses no one holds, and reach the old ones.
	names := slices.Sorted(func(yield func(string) bool) {
		for n := range old {
			if !yield(n) {
				return
			}
		}
	})
	if err := e.ping(names[0], old[names[1]]); err != nil {
		t.Errorf("old containers after the loss: %v", err)
	}
	g3 := uniq(t, e, "sl-g3")
	e.container(t, g3, "--network", gen)
	ip3 := e.inspectIP(t, g3, gen)
	for n, ip := range old {
		if ip == ip3 {
			t.Errorf("new container %s got %s, which %s holds", g3, ip3, n)
		}
		if err := e.ping(g3, ip); err != nil {
			t.Errorf("new container to an old one: %v", err)
		}
	}
	b2 := uniq(t, e, "sl-b2")
	bound.run(t, b2)
	if bound.addrs[b2] == bound.addrs[b1] {
		t.Errorf("new container %s on the bound network got %s, which %s holds", b2, bound.addrs[b2], b1)
	}
	if err := e.ping(b2, bound.addrs[b1]); err != nil {
		t.Errorf("new container to an old one on the bound network: %v", err)
	}

	// Removing everything leaves nothing.
	for _, n := range append(names, g3, b1, b2) {
		e.must(t, "rm", "-f", n)
	}
	bound.waitNoLeaks(t)
	e.must(t, "network", "rm", gen, bound.name)
	checkNetworkGone(t, genID, genSubnet, filepath.Join(s.d.stateDir, "ipam"))
	checkNetworkGone(t, boundID, bound.subnet, "")
}

// checkNetworkGone checks that a removed network left no record, no
// reservation, no rule naming it, no bridge of docker-cni's making, no
// dcni link or scratch netns and, for a generated network, no IPAM store
// dir under genStores.
func checkNetworkGone(t *testing.T, id, subnet, genStores string) {
	t.Helper()
	waitFor(t, "network "+id[:12]+" to be gone from docker-cni's records", func() bool {
		nws, _ := s.d.records("networks")
		return !slices.ContainsFunc(nws, func(n map[string]any) bool { return n["ID"] == id })
	})
	if rs, _ := s.d.records("reservations"); slices.ContainsFunc(rs, func(r map[string]any) bool {
		return strings.Contains(fmt.Sprint(r["PoolID"]), strings.TrimSuffix(subnet, "/24"))
	}) {
		t.Errorf("reservations left in %s: %v", subnet, rs)
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, _ := run(t.Context(), save)
		if strings.Contains(out, "docker-cni network "+id[:12]) {
			t.Errorf("%s still has rules of network %s:\n%s", save, id[:12], out)
		}
	}
	if _, err := os.Stat("/sys/class/net/cni-" + id[:10]); err == nil {
		t.Errorf("bridge cni-%s of network %s is left", id[:10], id[:12])
	}
	if stray := strayLinks(t); len(stray) > 0 {
		t.Errorf("left behind: %v", stray)
	}
	if genStores != "" {
		dir := filepath.Join(genStores, "docker-cni-"+strings.NewReplacer("/", "-").Replace(subnet))
		if _, err := os.Stat(dir); err == nil {
			entries, _ := os.ReadDir(dir)
			t.Errorf("the IPAM store dir %s of removed network %s is left: %v", dir, id[:12], entries)
		}
	}
}
