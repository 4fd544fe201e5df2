package hostfw

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/coreos/go-iptables/iptables"

	"github.com/docker-cni/docker-cni/translate"
)

// TestRealIPTables: Ensure and Remove through go-iptables against the
// host's iptables, in a chain of the test's own that nothing jumps to.
func TestRealIPTables(t *testing.T) {
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("iptables"); err != nil {
		why = "needs iptables"
	}
	if why != "" && os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: this test must run, but it %s", why)
	}
	if why != "" {
		t.Skip(why)
	}
	ipt, err := iptables.New()
	if err != nil {
		t.Fatal(err)
	}
	chain := fmt.Sprintf("DCNI-TEST-%d", os.Getpid()%100000)
	if err := ipt.NewChain("filter", chain); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ipt.ClearAndDeleteChain("filter", chain) })
	fw := New()
	rules := translate.DockerUserRules("0123456789abcdef0123", []netip.Prefix{netip.MustParsePrefix("10.231.119.0/24")})
	for range 2 {
		if ok, err := fw.Ensure(context.Background(), chain, rules); !ok || err != nil {
			t.Fatalf("Ensure: %v, %v", ok, err)
		}
	}
	list, err := ipt.List("filter", chain)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(list, "\n")
	if strings.Count(got, `"docker-cni network 0123456789ab"`) != 2 || !strings.Contains(got, "-s 10.231.119.0/24") || !strings.Contains(got, "-d 10.231.119.0/24") {
		t.Fatalf("chain after Ensure twice:\n%s", got)
	}
	if ok, err := fw.Ensure(context.Background(), chain+"-MISSING", rules); ok || err != nil {
		t.Errorf("Ensure on a missing chain: %v, %v; want false, nil", ok, err)
	}
	if err := fw.Remove(context.Background(), chain, rules); err != nil {
		t.Fatal(err)
	}
	if list, _ := ipt.List("filter", chain); len(list) != 1 {
		t.Errorf("chain after Remove: %q, want only its -N line", list)
	}
	// Rules found by their comment alone, as for a network whose record
	// was lost, go; others stay.
	if ok, err := fw.Ensure(context.Background(), chain, rules); !ok || err != nil {
		t.Fatalf("Ensure: %v, %v", ok, err)
	}
	if err := ipt.Append("filter", chain, "-s", "10.231.118.0/24", "-j", "RETURN"); err != nil {
		t.Fatal(err)
	}
	if err := removeTagged(ipt, "filter", chain, translate.NetworkRuleComment("0123456789abcdef0123")); err != nil {
		t.Fatal(err)
	}
	if list, _ := ipt.List("filter", chain); len(list) != 2 || !strings.Contains(list[1], "10.231.118.0/24") {
		t.Errorf("chain after removeTagged: %q, want its -N line and the untagged rule", list)
	}
}
