package node

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// hostFacts are the host settings a test may change and must restore.
type hostFacts struct {
	ipForward, policy string
	chains            map[string][]string // "iptables CNI-FORWARD" -> its rules
}

func readHostFacts(t *testing.T) hostFacts {
	t.Helper()
	b, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	out, err := iptablesOutput(context.Background(), "-S", "FORWARD")
	if err != nil {
		t.Fatal(err)
	}
	f := hostFacts{ipForward: strings.TrimSpace(string(b)), policy: forwardPolicy(out), chains: map[string][]string{}}
	for tool, dump := range saveAll(t) {
		for _, line := range strings.Split(dump, "\n") {
			if c, ok := strings.CutPrefix(line, ":CNI-"); ok {
				f.chains[tool+" CNI-"+strings.Fields(c)[0]] = nil
			}
			if c, ok := strings.CutPrefix(line, "-A CNI-"); ok {
				k := tool + " CNI-" + strings.Fields(c)[0]
				f.chains[k] = append(f.chains[k], line)
			}
		}
	}
	return f
}

// ours reports whether a chain's rules (all naming an e2en link or an
// address in Range) make it this test's. Other tests on the host may make
// CNI-* chains meanwhile: those with rules of their own, or none (such as
// the firewall plugin's CNI-ADMIN), are not counted as ours. Pure.
func ours(rules []string) bool {
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		if !strings.Contains(r, namePrefix) && !mentionsRange(r) {
			return false
		}
	}
	return true
}

// expectClean records the host now and returns a check, to run after every
// other cleanup, that the test left nothing: no e2en* link, netns, route
// or rule, no iptables rule naming an address in Range, no new CNI-* chain,
// no mount or process under dir, and ip_forward and the FORWARD policy as
// they were.
func expectClean(t *testing.T, dir string) func() {
	before := readHostFacts(t)
	return func() {
		after := readHostFacts(t)
		if after.ipForward != before.ipForward || after.policy != before.policy {
			t.Errorf("host ip_forward %s and FORWARD policy %s after the test, want %s and %s",
				after.ipForward, after.policy, before.ipForward, before.policy)
		}
		for c, rules := range after.chains {
			if _, had := before.chains[c]; !had && ours(rules) {
				t.Errorf("left chain: %s", c)
			}
		}
		for tool, dump := range saveAll(t) {
			for _, line := range strings.Split(dump, "\n") {
				if !strings.HasPrefix(line, "#") && (strings.Contains(line, namePrefix) || mentionsRange(line)) {
					t.Errorf("left rule: %s %s", tool, line)
				}
			}
		}
		expectNoLinksOrRoutes(t)
		for _, d := range []string{NetNSDir, MountNSDir} {
			if ents, err := os.ReadDir(d); err == nil || !os.IsNotExist(err) {
				t.Errorf("left dir %s: %v (%v)", d, ents, err)
			}
		}
		expectNoMountsOrProcs(t, dir)
	}
}

func expectNoLinksOrRoutes(t *testing.T) {
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.HasPrefix(l.Attrs().Name, namePrefix) {
			t.Errorf("left link: %s", l.Attrs().Name)
		}
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if mentionsRange(r.String()) {
			t.Errorf("left route: %s", r)
		}
	}
}

func expectNoMountsOrProcs(t *testing.T, dir string) {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, dir) || strings.Contains(line, NetNSDir) || strings.Contains(line, MountNSDir) {
			t.Errorf("left mount: %s", line)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(dir)) {
			t.Errorf("left process %s: %s", filepath.Base(filepath.Dir(p)), bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
}

// saveAll is iptables-save and ip6tables-save, all tables.
func saveAll(t *testing.T) map[string]string {
	t.Helper()
	dumps := map[string]string{}
	for _, tool := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(tool + "-save").Output()
		if err != nil {
			t.Fatalf("%s-save: %v", tool, err)
		}
		dumps[tool] = string(out)
	}
	return dumps
}

// mentionsRange reports whether s names an address or prefix in Range.
// Pure.
func mentionsRange(s string) bool {
	words := strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '.' || r == '/')
	})
	for _, w := range words {
		p, err := netip.ParsePrefix(w)
		if a, aerr := netip.ParseAddr(w); aerr == nil {
			p, err = netip.PrefixFrom(a, a.BitLen()), nil
		}
		if err == nil && within(p) {
			return true
		}
	}
	return false
}
