package cri

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`FORWARD -j CNI-FORWARD`, []string{"FORWARD", "-j", "CNI-FORWARD"}},
		{`FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`,
			[]string{"FORWARD", "-m", "comment", "--comment", "CNI firewall plugin rules", "-j", "CNI-FORWARD"}},
		{`X --comment "say \"hi\"" -j ACCEPT`, []string{"X", "--comment", `say "hi"`, "-j", "ACCEPT"}},
		{`X --comment "" -j ACCEPT`, []string{"X", "--comment", "", "-j", "ACCEPT"}},
		{`  X   -j   ACCEPT `, []string{"X", "-j", "ACCEPT"}},
	} {
		if got := SplitRule(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitRule(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMentions(t *testing.T) {
	subnet := netip.MustParsePrefix("10.238.1.0/24")
	for _, tc := range []struct {
		rule string
		want bool
	}{
		{`CNI-FORWARD -d 10.238.1.3/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`, true},
		{`CNI-FORWARD -s 10.238.1.3/32 -j ACCEPT`, true},
		{`CNI-DN-x -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.238.1.3:8080`, true},
		{`X -m iprange --src-range 10.238.1.2-10.238.1.9 -j ACCEPT`, true},
		{`X ! -s 10.238.1.0/24 -j MASQUERADE`, true},
		{`FORWARD -i cri-smoke0 -j ACCEPT`, true},
		{`CNI-FORWARD -s 10.238.2.3/32 -j ACCEPT`, false},
		{`FORWARD -s 0.0.0.0/0 -j ACCEPT`, false},
		{`FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`, false},
		{`FORWARD -i cri-smoke01 -j ACCEPT`, false},
	} {
		w := SplitRule(tc.rule)
		r := rule{chain: w[0], args: w[1:]}
		if got := mentions(r, "cri-smoke0", subnet); got != tc.want {
			t.Errorf("mentions(%q) = %v, want %v", tc.rule, got, tc.want)
		}
	}
}

func TestStaleChains(t *testing.T) {
	subnet := netip.MustParsePrefix("10.238.1.0/24")
	dump := strings.Join([]string{
		"*filter",
		":FORWARD DROP [0:0]",
		":CNI-ADMIN - [0:0]",
		":CNI-FORWARD - [0:0]",
		":CNI-OTHER - [0:0]",
		":CNI-OLD - [0:0]",
		`-A FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD`,
		`-A CNI-FORWARD -m comment --comment "CNI firewall plugin admin overrides" -j CNI-ADMIN`,
		`-A CNI-FORWARD -s 10.238.1.3/32 -j ACCEPT`,
		`-A CNI-OTHER -s 10.99.0.3/32 -j ACCEPT`,
		"COMMIT",
	}, "\n")
	d := parseSave(dump)
	if want := []string{"FORWARD", "CNI-ADMIN", "CNI-FORWARD", "CNI-OTHER", "CNI-OLD"}; !slices.Equal(d.chains, want) {
		t.Fatalf("chains %q, want %q", d.chains, want)
	}
	if len(d.rules) != 4 || d.rules[1].target() != "CNI-ADMIN" {
		t.Fatalf("rules %+v", d.rules)
	}
	isNew := func(c string) bool { return strings.HasPrefix(c, "CNI-") && c != "CNI-OLD" }
	ours := func(r rule) bool { return mentions(r, "cri-smoke0", subnet) }
	got := staleChains(d, isNew, ours)
	// CNI-OTHER holds someone else's rule; CNI-OLD was there before.
	if want := map[string]bool{"CNI-ADMIN": true, "CNI-FORWARD": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("staleChains = %v, want %v", got, want)
	}
}
