// Package hostfw manages the few host firewall rules docker-cni owns: accept
// rules in dockerd's DOCKER-USER chain for bound networks whose conflist has
// no firewall plugin. It drives iptables and ip6tables through
// github.com/coreos/go-iptables, which waits for the xtables lock (-w, or
// the lock file on iptables too old for it) and works the same with the
// legacy and the nf_tables (iptables-nft) binaries. Rule content comes from
// translate; this package decides nothing about it.
package hostfw

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-iptables/iptables"

	"github.com/docker-cni/docker-cni/translate"
)

// table is the part of *iptables.IPTables the rules need.
type table interface {
	ChainExists(table, chain string) (bool, error)
	NewChain(table, chain string) error
	Exists(table, chain string, rulespec ...string) (bool, error)
	Insert(table, chain string, pos int, rulespec ...string) error
	Append(table, chain string, rulespec ...string) error
	Delete(table, chain string, rulespec ...string) error
	List(table, chain string) ([]string, error)
}

// own are docker-cni's own chains, with the table and the built-in chain
// that jumps to them (appended: after dockerd's rules, so DOCKER-USER
// still comes first).
var own = map[string][2]string{
	translate.ForwardChain:     {"filter", "FORWARD"},
	translate.PostroutingChain: {"nat", "POSTROUTING"},
}

// where is the table and chain of a rule: its own, else filter and chain.
func where(r translate.AcceptRule, chain string) (string, string) {
	tbl, ch := r.Table, r.Chain
	if tbl == "" {
		tbl = "filter"
	}
	if ch == "" {
		ch = chain
	}
	return tbl, ch
}

var _ table = (*iptables.IPTables)(nil)

// lockWait is how long a command waits for the xtables lock (iptables -w).
const lockWait = 5

// maxCopies bounds how many copies of one rule Remove deletes.
const maxCopies = 16

// IPTables adds and removes rules with iptables (V4) and ip6tables (V6).
type IPTables struct {
	// open returns the table of a family; New sets it to go-iptables.
	open func(v6 bool) (table, error)

	mu     sync.Mutex
	tables [2]table
}

// New returns IPTables over the host's iptables and ip6tables binaries,
// found when first needed: a host without them has no dockerd firewall,
// and then no rules are needed.
func New() *IPTables {
	return &IPTables{open: func(v6 bool) (table, error) {
		proto := iptables.ProtocolIPv4
		if v6 {
			proto = iptables.ProtocolIPv6
		}
		return iptables.New(iptables.IPFamily(proto), iptables.Timeout(lockWait))
	}}
}

// errNoBinary is an iptables binary that is not installed.
var errNoBinary = errors.New("not installed")

// table returns the family's table, opening it once.
func (t *IPTables) table(v6 bool) (table, error) {
	i := 0
	if v6 {
		i = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tables[i] != nil {
		return t.tables[i], nil
	}
	tb, err := t.open(v6)
	if err != nil {
		bin := "iptables"
		if v6 {
			bin = "ip6tables"
		}
		return nil, fmt.Errorf("%s: %w: %w", bin, errNoBinary, err)
	}
	t.tables[i] = tb
	return tb, nil
}

// Ensure puts each rule in place unless it is there: at the top of a chain
// of dockerd's (DOCKER-USER), or in one of docker-cni's own chains, made
// with their jump when missing. It returns false, doing nothing more, when
// a chain of dockerd's does not exist or there is no iptables binary: no
// dockerd with its iptables firewall on this host (it may use its nftables
// backend, or none), so nothing in DOCKER-USER's place drops the traffic.
func (t *IPTables) Ensure(ctx context.Context, chain string, rules []translate.AcceptRule) (bool, error) {
	for _, r := range rules {
		tb, err := t.table(r.V6)
		if errors.Is(err, errNoBinary) {
			return false, nil
		}
		tbl, ch := where(r, chain)
		if ok, err := ensureChain(tb, tbl, ch); err != nil || !ok {
			return false, err
		}
		if ok, err := tb.Exists(tbl, ch, r.Args...); err == nil && ok {
			continue
		}
		if _, mine := own[ch]; mine {
			err = tb.Append(tbl, ch, r.Args...)
		} else {
			err = tb.Insert(tbl, ch, 1, r.Args...)
		}
		if err != nil {
			return false, fmt.Errorf("add %s %s rule %v: %w", tbl, ch, r.Args, err)
		}
	}
	return true, nil
}

// ensureChain reports whether chain exists in tbl, making one of
// docker-cni's own with its jump.
func ensureChain(tb table, tbl, chain string) (bool, error) {
	ok, err := tb.ChainExists(tbl, chain)
	if err != nil {
		return false, fmt.Errorf("look for chain %s: %w", chain, err)
	}
	from, mine := own[chain]
	if !mine {
		return ok, nil
	}
	if !ok {
		if err := tb.NewChain(tbl, chain); err != nil {
			return false, fmt.Errorf("make chain %s %s: %w", tbl, chain, err)
		}
	}
	jump := []string{"-m", "comment", "--comment", "docker-cni", "-j", chain}
	if ok, err := tb.Exists(from[0], from[1], jump...); err == nil && ok {
		return true, nil
	}
	if err := tb.Append(from[0], from[1], jump...); err != nil {
		return false, fmt.Errorf("jump from %s to %s: %w", from[1], chain, err)
	}
	return true, nil
}

// Remove deletes each rule from chain, every copy of it; missing rules,
// chains and binaries are fine.
func (t *IPTables) Remove(ctx context.Context, chain string, rules []translate.AcceptRule) error {
	for _, r := range rules {
		tb, err := t.table(r.V6)
		if err != nil {
			continue
		}
		tbl, ch := where(r, chain)
		for range maxCopies {
			if ok, err := tb.Exists(tbl, ch, r.Args...); err != nil || !ok {
				break
			}
			if err := tb.Delete(tbl, ch, r.Args...); err != nil {
				break
			}
		}
	}
	return nil
}

// tagged are the chains RemoveTagged looks in: dockerd's DOCKER-USER and
// docker-cni's own.
var tagged = [][2]string{
	{"filter", translate.DockerUserChain},
	{"filter", translate.ForwardChain},
	{"nat", translate.PostroutingChain},
}

// RemoveTagged deletes, in both families, every rule of DOCKER-USER and of
// docker-cni's own chains whose comment is tag: the rules of a network
// whose record was lost. Missing chains and binaries are fine.
func (t *IPTables) RemoveTagged(ctx context.Context, tag string) error {
	var errs []error
	for _, v6 := range []bool{false, true} {
		tb, err := t.table(v6)
		if err != nil {
			continue
		}
		for _, w := range tagged {
			errs = append(errs, removeTagged(tb, w[0], w[1], tag))
		}
	}
	return errors.Join(errs...)
}

// removeTagged deletes the rules of one chain whose comment is tag, by
// their numbers, the last first so that the numbers hold.
func removeTagged(tb table, tbl, chain, tag string) error {
	if ok, err := tb.ChainExists(tbl, chain); err != nil || !ok {
		return nil
	}
	rules, err := tb.List(tbl, chain)
	if err != nil {
		return fmt.Errorf("list %s %s: %w", tbl, chain, err)
	}
	nums := TaggedRuleNumbers(rules, tag)
	for i := len(nums) - 1; i >= 0; i-- {
		if err := tb.Delete(tbl, chain, strconv.Itoa(nums[i])); err != nil {
			return fmt.Errorf("delete rule %d of %s %s: %w", nums[i], tbl, chain, err)
		}
	}
	return nil
}

// TaggedRuleNumbers are the numbers (1-based, as iptables -D takes them) of
// the rules in a chain listing (iptables -S) whose comment is tag. Pure.
func TaggedRuleNumbers(listing []string, tag string) []int {
	var out []int
	n := 0
	want := []string{`--comment "` + tag + `"`, "--comment " + tag + " "}
	for _, r := range listing {
		if !strings.HasPrefix(r, "-A ") {
			continue
		}
		n++
		line := r + " "
		if strings.Contains(line, want[0]) || strings.Contains(line, want[1]) {
			out = append(out, n)
		}
	}
	return out
}

// Missing lists the rules that are not in place (read only: for `docker-cni
// doctor`). A missing binary or chain makes every rule of it missing.
func (t *IPTables) Missing(ctx context.Context, chain string, rules []translate.AcceptRule) ([]translate.AcceptRule, error) {
	var out []translate.AcceptRule
	for _, r := range rules {
		tb, err := t.table(r.V6)
		if err != nil {
			out = append(out, r)
			continue
		}
		tbl, ch := where(r, chain)
		ok, err := tb.Exists(tbl, ch, r.Args...)
		if err != nil || !ok {
			out = append(out, r)
		}
	}
	return out, nil
}
