package overlay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
)

// flannelChain is an iptables chain flanneld makes (with --ip-masq and its
// default --iptables-forward-rules) and the rule that jumps to it, as
// flanneld writes them.
type flannelChain struct {
	table, chain, from string
	jump               []string
}

var flannelChains = []flannelChain{
	{"filter", "FLANNEL-FWD", "FORWARD", []string{"-m", "comment", "--comment", "flanneld forward", "-j", "FLANNEL-FWD"}},
	{"nat", "FLANNEL-POSTRTG", "POSTROUTING", []string{"-m", "comment", "--comment", "flanneld masq", "-j", "FLANNEL-POSTRTG"}},
}

// CleanHost removes what a flanneld of network n left in the host's
// network namespace once stopped: its vxlan link (with its routes, ARP and
// FDB entries) and its iptables chains with the jumps to them. It refuses,
// touching nothing, when those chains hold rules for another network
// (another flanneld runs here). Safe to repeat; run it before a test too,
// for the leftovers of a run that was killed.
func CleanHost(n Network) error {
	ipt, err := iptables.New()
	if err != nil {
		return fmt.Errorf("clean up flannel: %w", err)
	}
	for _, c := range flannelChains {
		rules, err := chainRules(ipt, c)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if !ourRule(r, n) {
				return fmt.Errorf("clean up flannel: %s %s holds a rule for another network (another flanneld on this host?): %s", c.table, c.chain, r)
			}
		}
	}
	var errs []error
	if link, err := netlink.LinkByName(n.Link()); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("clean up flannel: delete link %s: %w", n.Link(), err))
		}
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		errs = append(errs, fmt.Errorf("clean up flannel: find link %s: %w", n.Link(), err))
	}
	for _, c := range flannelChains {
		if err := dropChain(ipt, c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// chainRules are the rules of c's chain ("-A ..." lines), none when it is
// missing.
func chainRules(ipt *iptables.IPTables, c flannelChain) ([]string, error) {
	ok, err := ipt.ChainExists(c.table, c.chain)
	if err != nil || !ok {
		return nil, err
	}
	lines, err := ipt.List(c.table, c.chain)
	if err != nil {
		return nil, fmt.Errorf("clean up flannel: list %s %s: %w", c.table, c.chain, err)
	}
	var rules []string
	for _, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	return rules, nil
}

// ourRule reports whether a rule of a flannel chain is one flanneld writes
// for network n: it names n's network, or is the kube-proxy mark's RETURN
// every flanneld writes. Pure.
func ourRule(rule string, n Network) bool {
	return strings.Contains(rule, " "+n.Network.String()+" ") || strings.Contains(rule, "--mark 0x4000/0x4000")
}

// dropChain deletes every jump to c's chain, then the chain.
func dropChain(ipt *iptables.IPTables, c flannelChain) error {
	for i := 0; i < 10; i++ {
		ok, err := ipt.Exists(c.table, c.from, c.jump...)
		if err != nil || !ok {
			break
		}
		if err := ipt.Delete(c.table, c.from, c.jump...); err != nil {
			return fmt.Errorf("clean up flannel: delete the jump from %s %s to %s: %w", c.table, c.from, c.chain, err)
		}
	}
	if ok, err := ipt.ChainExists(c.table, c.chain); err != nil || !ok {
		return err
	}
	if err := ipt.ClearAndDeleteChain(c.table, c.chain); err != nil {
		return fmt.Errorf("clean up flannel: delete %s %s: %w", c.table, c.chain, err)
	}
	return nil
}
