package hostfw

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

// fakeTable is one family's filter table: chains of rules, each rule its
// args joined by spaces.
type fakeTable struct {
	chains map[string][]string
	calls  []string
}

func (f *fakeTable) ChainExists(table, chain string) (bool, error) {
	_, ok := f.chains[chain]
	return ok, nil
}

func (f *fakeTable) Exists(table, chain string, spec ...string) (bool, error) {
	return slices.Contains(f.chains[chain], strings.Join(spec, " ")), nil
}

func (f *fakeTable) Insert(table, chain string, pos int, spec ...string) error {
	f.calls = append(f.calls, fmt.Sprintf("-I %s %d %s", chain, pos, strings.Join(spec, " ")))
	f.chains[chain] = append([]string{strings.Join(spec, " ")}, f.chains[chain]...)
	return nil
}

func (f *fakeTable) NewChain(table, chain string) error {
	f.calls = append(f.calls, fmt.Sprintf("-N %s", chain))
	f.chains[chain] = nil
	return nil
}

func (f *fakeTable) Append(table, chain string, spec ...string) error {
	f.calls = append(f.calls, fmt.Sprintf("-A %s %s", chain, strings.Join(spec, " ")))
	f.chains[chain] = append(f.chains[chain], strings.Join(spec, " "))
	return nil
}

func (f *fakeTable) Delete(table, chain string, spec ...string) error {
	f.calls = append(f.calls, fmt.Sprintf("-D %s %s", chain, strings.Join(spec, " ")))
	i := slices.Index(f.chains[chain], strings.Join(spec, " "))
	if n, err := strconv.Atoi(strings.Join(spec, " ")); err == nil {
		i = n - 1
	}
	if i < 0 {
		return errors.New("no such rule")
	}
	f.chains[chain] = slices.Delete(f.chains[chain], i, i+1)
	return nil
}

// List lists a chain as iptables -S does, quoting comments with spaces.
func (f *fakeTable) List(table, chain string) ([]string, error) {
	out := []string{"-N " + chain}
	for _, r := range f.chains[chain] {
		out = append(out, "-A "+chain+" "+quoteComment(r))
	}
	return out, nil
}

// quoteComment quotes the value of "--comment" up to the next " -" as
// iptables -S prints it.
func quoteComment(rule string) string {
	before, after, ok := strings.Cut(rule, "--comment ")
	if !ok {
		return rule
	}
	val, rest, _ := strings.Cut(after, " -")
	if rest != "" {
		rest = " -" + rest
	}
	if strings.Contains(val, " ") {
		val = `"` + val + `"`
	}
	return before + "--comment " + val + rest
}

func fakes(v4, v6 *fakeTable) *IPTables {
	return &IPTables{open: func(v6fam bool) (table, error) {
		t := v4
		if v6fam {
			t = v6
		}
		if t == nil {
			return nil, errors.New(`exec: "iptables": executable file not found in $PATH`)
		}
		return t, nil
	}}
}

func acceptRules() []translate.AcceptRule {
	return []translate.AcceptRule{
		{Args: []string{"-s", "10.231.110.0/24", "-j", "ACCEPT"}},
		{Args: []string{"-d", "10.231.110.0/24", "-j", "ACCEPT"}},
		{V6: true, Args: []string{"-s", "fd00:231::/64", "-j", "ACCEPT"}},
	}
}

// TestEnsure: missing rules are inserted at the top, each family in its
// own table, rules already there are left alone, and a second Ensure
// changes nothing.
func TestEnsure(t *testing.T) {
	v4 := &fakeTable{chains: map[string][]string{"DOCKER-USER": {"-s 10.231.110.0/24 -j ACCEPT", "-j RETURN"}}}
	v6 := &fakeTable{chains: map[string][]string{"DOCKER-USER": {"-j RETURN"}}}
	fw := fakes(v4, v6)
	for i := range 2 {
		ok, err := fw.Ensure(context.Background(), "DOCKER-USER", acceptRules())
		if !ok || err != nil {
			t.Fatalf("Ensure %d: %v, %v", i, ok, err)
		}
	}
	if want := []string{"-I DOCKER-USER 1 -d 10.231.110.0/24 -j ACCEPT"}; !slices.Equal(v4.calls, want) {
		t.Errorf("iptables calls %q, want %q", v4.calls, want)
	}
	if want := []string{"-I DOCKER-USER 1 -s fd00:231::/64 -j ACCEPT"}; !slices.Equal(v6.calls, want) {
		t.Errorf("ip6tables calls %q, want %q", v6.calls, want)
	}
	if got := v4.chains["DOCKER-USER"]; got[len(got)-1] != "-j RETURN" || len(got) != 3 {
		t.Errorf("DOCKER-USER = %q, want both rules above RETURN", got)
	}
}

// TestEnsureWithoutChain: without a DOCKER-USER chain (dockerd with
// --iptables=false or its nftables firewall backend) or without iptables
// at all, Ensure does nothing and says so.
func TestEnsureWithoutChain(t *testing.T) {
	for name, fw := range map[string]*IPTables{
		"no chain":    fakes(&fakeTable{chains: map[string][]string{"FORWARD": nil}}, &fakeTable{chains: map[string][]string{}}),
		"no iptables": fakes(nil, nil),
	} {
		ok, err := fw.Ensure(context.Background(), "DOCKER-USER", acceptRules())
		if ok || err != nil {
			t.Errorf("%s: Ensure = %v, %v; want false, nil", name, ok, err)
		}
		if err := fw.Remove(context.Background(), "DOCKER-USER", acceptRules()); err != nil {
			t.Errorf("%s: Remove: %v", name, err)
		}
	}
}

// TestRemove deletes every copy of each rule, and nothing else.
func TestRemove(t *testing.T) {
	v4 := &fakeTable{chains: map[string][]string{"DOCKER-USER": {
		"-s 10.231.110.0/24 -j ACCEPT", "-d 10.231.110.0/24 -j ACCEPT", "-s 10.231.110.0/24 -j ACCEPT", "-s 10.9.0.0/16 -j ACCEPT", "-j RETURN"}}}
	fw := fakes(v4, &fakeTable{chains: map[string][]string{}})
	if err := fw.Remove(context.Background(), "DOCKER-USER", acceptRules()); err != nil {
		t.Fatal(err)
	}
	if got, want := v4.chains["DOCKER-USER"], []string{"-s 10.9.0.0/16 -j ACCEPT", "-j RETURN"}; !slices.Equal(got, want) {
		t.Errorf("DOCKER-USER = %q, want %q", got, want)
	}
}

// TestOwnChains: rules in docker-cni's own chains make the chain and its
// jump from the built-in chain once, are appended, and are removed as
// given.
func TestOwnChains(t *testing.T) {
	v4 := &fakeTable{chains: map[string][]string{"FORWARD": {"-j DOCKER-USER"}, "POSTROUTING": nil}}
	fw := fakes(v4, nil)
	rules := translate.GeneratedRules("0123456789abcdef", "cni-01234", []netip.Prefix{netip.MustParsePrefix("10.30.0.0/24")}, false)
	for range 2 {
		if ok, err := fw.Ensure(context.Background(), translate.DockerUserChain, rules); !ok || err != nil {
			t.Fatalf("Ensure = %v, %v", ok, err)
		}
	}
	if got := v4.chains["FORWARD"]; !slices.Equal(got, []string{"-j DOCKER-USER", "-m comment --comment docker-cni -j " + translate.ForwardChain}) {
		t.Errorf("FORWARD = %q: want one jump to %s after dockerd's", got, translate.ForwardChain)
	}
	if len(v4.chains[translate.ForwardChain]) != 2 || len(v4.chains[translate.PostroutingChain]) != 1 || len(v4.chains["POSTROUTING"]) != 1 {
		t.Errorf("chains = %q", v4.chains)
	}
	if err := fw.Remove(context.Background(), translate.DockerUserChain, rules); err != nil {
		t.Fatal(err)
	}
	if len(v4.chains[translate.ForwardChain]) != 0 || len(v4.chains[translate.PostroutingChain]) != 0 {
		t.Errorf("after Remove: %q", v4.chains)
	}
}

func TestRemoveTagged(t *testing.T) {
	v4 := &fakeTable{chains: map[string][]string{
		translate.DockerUserChain: {
			"-s 10.1.0.0/24 -m comment --comment docker-cni network aaaaaaaaaaaa -j ACCEPT",
			"-s 10.9.0.0/24 -j DROP",
			"-d 10.1.0.0/24 -m comment --comment docker-cni network aaaaaaaaaaaa -j ACCEPT",
			"-d 10.2.0.0/24 -m comment --comment docker-cni network bbbbbbbbbbbb -j ACCEPT",
		},
		translate.ForwardChain: {"-o cni-aaaaaaaaaa -m comment --comment docker-cni network aaaaaaaaaaaa -j ACCEPT"},
	}}
	fw := fakes(v4, nil)
	if err := fw.RemoveTagged(context.Background(), translate.NetworkRuleComment("aaaaaaaaaaaaffff")); err != nil {
		t.Fatal(err)
	}
	want := []string{"-s 10.9.0.0/24 -j DROP", "-d 10.2.0.0/24 -m comment --comment docker-cni network bbbbbbbbbbbb -j ACCEPT"}
	if got := v4.chains[translate.DockerUserChain]; !slices.Equal(got, want) {
		t.Errorf("DOCKER-USER after RemoveTagged:\n%q\nwant\n%q", got, want)
	}
	if got := v4.chains[translate.ForwardChain]; len(got) != 0 {
		t.Errorf("DOCKER-CNI-FORWARD after RemoveTagged: %q", got)
	}
}

func TestTaggedRuleNumbers(t *testing.T) {
	listing := []string{
		"-P FORWARD DROP",
		`-A FORWARD -m comment --comment "docker-cni network 0123456789ab" -j ACCEPT`,
		`-A FORWARD -m comment --comment "docker-cni network 0123456789abc" -j ACCEPT`,
		"-A FORWARD -j DOCKER-USER",
		`-A FORWARD -d 10.0.0.0/8 -m comment --comment "docker-cni network 0123456789ab" -j ACCEPT`,
	}
	if got := TaggedRuleNumbers(listing, "docker-cni network 0123456789ab"); !slices.Equal(got, []int{1, 4}) {
		t.Errorf("TaggedRuleNumbers = %v, want [1 4]", got)
	}
}
