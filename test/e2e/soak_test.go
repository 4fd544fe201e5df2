package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSoak: SOAK_N (default 100) cycles of `docker run --rm --network NET
// IMAGE true`, alternating engines, each on a generated network of its own.
// Whatever a cycle makes must be gone at the end: reservations and endpoints
// in docker-cni's state, addresses in the host-local stores, dcni* host
// links, scratch netns entries, iptables and ip6tables rules. The daemon's
// RSS is reported (logged, and written with the table to SOAK_REPORT if
// set), never judged: it is too noisy for a pass/fail line.
func TestSoak(t *testing.T) {
	n := 100
	if v := os.Getenv("SOAK_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("SOAK_N=%q: want a positive number of cycles", v)
		}
	}
	nets := make([]string, len(s.engines))
	var cniNames []string
	for i, e := range s.engines {
		nets[i] = uniq(t, e, "soak")
		e.network(t, nets[i], "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.extraSubnet(3))
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", nets[i])
		nw := networkRecord(t, id)
		if nw == nil {
			t.Fatalf("docker-cni has no record of network %s", id)
		}
		cniNames = append(cniNames, nw["CNINetwork"].(string))
	}
	cycle := func(i int) error {
		e := s.engines[i%len(s.engines)]
		if out, err := e.docker("run", "--rm", "--network", nets[i%len(nets)], image, "true"); err != nil {
			return fmt.Errorf("cycle %d on %s: docker run --rm: %v: %s", i, e.name, err, out)
		}
		return nil
	}
	// One warm-up cycle per engine: what the first container of a network
	// sets up once (bridge, the firewall and portmap chains) is in the
	// baseline, not counted as a leak.
	for i := range s.engines {
		if err := cycle(i); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}

	start := soakMeasure(t, cniNames)
	failed := 0
	for i := range n {
		if err := cycle(i); err != nil {
			t.Error(err)
			if failed++; failed == 5 {
				t.Fatalf("stopped after 5 failed cycles of %d", i+1)
			}
		}
	}
	settle(t, func() bool { return len(hostLinks(t, "dcni")) <= start[3].value })
	end := soakMeasure(t, cniNames)

	var tab strings.Builder
	fmt.Fprintf(&tab, "soak: %d run/rm cycles over %d engine(s)\n", n, len(s.engines))
	fmt.Fprintf(&tab, "%-34s %10s %10s\n", "", "start", "end")
	for i, m := range start {
		fmt.Fprintf(&tab, "%-34s %10d %10d\n", m.name, m.value, end[i].value)
	}
	t.Logf("\n%s", tab.String())
	if p := os.Getenv("SOAK_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(tab.String()), 0o644); err != nil {
			t.Errorf("SOAK_REPORT: %v", err)
		}
	}
	for i, m := range start {
		if m.judged && end[i].value > m.value {
			t.Errorf("leak after %d cycles: %s went from %d to %d", n, m.name, m.value, end[i].value)
		}
	}
}

// soakMetric is one count the soak test compares before and after.
type soakMetric struct {
	name  string
	value int
	// judged: an increase fails the test (everything but RSS).
	judged bool
}

func soakMeasure(t *testing.T, cniNames []string) []soakMetric {
	t.Helper()
	count := func(table string) int {
		recs, err := s.d.records(table)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	addrs := 0
	for _, n := range cniNames {
		addrs += len(storeAddresses(t, n))
	}
	return []soakMetric{
		{"reservations (docker-cni state)", count("reservations"), true},
		{"endpoints (docker-cni state)", count("endpoints"), true},
		{"host-local store addresses", addrs, true},
		{"dcni* host links", len(hostLinks(t, "dcni")), true},
		{"run-dir netns entries", netnsEntries(t), true},
		{"iptables rules (-A)", ruleCount(t, "iptables-save"), true},
		{"ip6tables rules (-A)", ruleCount(t, "ip6tables-save"), true},
		{"daemon VmRSS (kB)", daemonRSS(t), false},
	}
}

// netnsEntries counts the daemon's scratch netns entries (run-dir/netns),
// leaving out the IPAM namespace it keeps for its life.
func netnsEntries(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.d.runDir, "netns"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, en := range entries {
		if en.Name() != "ipam" {
			n++
		}
	}
	return n
}

// ruleCount counts the rules (-A lines) iptables-save or ip6tables-save
// prints.
func ruleCount(t *testing.T, save string) int {
	t.Helper()
	out, err := run(t.Context(), save)
	if err != nil {
		t.Fatalf("%s: %v\n%s", save, err, out)
	}
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "-A") {
			n++
		}
	}
	return n
}

// daemonRSS is the daemon's resident set in kB, from /proc/<pid>/status.
func daemonRSS(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return kb
		}
	}
	t.Fatal("no VmRSS in the daemon's /proc status")
	return 0
}
