package driver

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// forwardingRules are the DOCKER-USER accept rules a network needs now: only
// a bound network whose chain has no firewall plugin (generated chains have
// one) and only when enabled.
func (d *Driver) forwardingRules(nw *state.Network) []state.Rule {
	if !d.cfg.DockerUserRules || !nw.Bound || d.fw == nil {
		return nil
	}
	pl, err := cniconf.Parse(nw.Conflist)
	if err != nil || pl.HasPlugin("firewall") {
		return nil
	}
	var out []state.Rule
	for _, r := range translate.DockerUserRules(nw.ID, pl.Subnets()) {
		out = append(out, state.Rule{V6: r.V6, Args: r.Args})
	}
	return out
}

func acceptRules(rs []state.Rule) []translate.AcceptRule {
	var out []translate.AcceptRule
	for _, r := range rs {
		out = append(out, translate.AcceptRule{V6: r.V6, Args: r.Args})
	}
	return out
}

// ensureForwarding puts a network's DOCKER-USER rules in place and records
// them in nw: dockerd sets the FORWARD policy to DROP and bridged traffic
// passes iptables, so without them pods and containers on a conflist with
// no firewall plugin cannot reach each other. Rules it recorded before and
// no longer wants (the conflist gained a firewall plugin or changed its
// subnet, the feature was turned off) are removed. It reports whether nw
// changed.
func (d *Driver) ensureForwarding(ctx context.Context, nw *state.Network) (bool, error) {
	want := d.forwardingRules(nw)
	var stale []state.Rule
	for _, r := range nw.Rules {
		if !slices.ContainsFunc(want, func(w state.Rule) bool { return sameRule(r, w) }) {
			stale = append(stale, r)
		}
	}
	if len(stale) > 0 && d.fw != nil {
		d.fw.Remove(ctx, translate.DockerUserChain, acceptRules(stale))
		d.log.InfoContext(ctx, "removed "+translate.DockerUserChain+" rules the network no longer needs", "network", translate.ShortID(nw.ID), "rules", len(stale))
	}
	if len(want) == 0 {
		changed := len(nw.Rules) > 0
		nw.Rules = nil
		return changed, nil
	}
	done, err := d.fw.Ensure(ctx, translate.DockerUserChain, acceptRules(want))
	if err != nil {
		return false, fmt.Errorf("accept CNI network %q in %s: %w", nw.CNINetwork, translate.DockerUserChain, err)
	}
	if !done {
		// No DOCKER-USER chain (no dockerd with iptables): nothing drops
		// the traffic; retried on the next pass.
		return false, nil
	}
	changed := !slices.EqualFunc(nw.Rules, want, sameRule)
	if changed {
		d.log.InfoContext(ctx, "accepting the network's traffic in "+translate.DockerUserChain+" (its conflist has no firewall plugin; turn off with --docker-user-rules=false)",
			"network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork, "rules", len(want))
	}
	nw.Rules = want
	return changed, nil
}

func sameRule(a, b state.Rule) bool { return a.V6 == b.V6 && slices.Equal(a.Args, b.Args) }

// removeForwarding removes the rules recorded as installed for nw.
func (d *Driver) removeForwarding(ctx context.Context, nw *state.Network) {
	if len(nw.Rules) > 0 && d.fw != nil {
		d.fw.Remove(ctx, translate.DockerUserChain, acceptRules(nw.Rules))
	}
}

// EnsureAll brings every network's DOCKER-USER rules to what it needs now,
// e.g. after a reboot or a dockerd restart that recreated the chain, a
// changed conflist, or a restart with --docker-user-rules=false.
func (d *Driver) EnsureAll(ctx context.Context) error {
	var nws []*state.Network
	if err := d.store.View(func(tx *state.Tx) (err error) {
		nws, err = tx.Networks()
		return err
	}); err != nil {
		return err
	}
	var errs []error
	for _, nw := range nws {
		errs = append(errs, d.ensureNetwork(ctx, nw.ID))
	}
	return errors.Join(errs...)
}

func (d *Driver) ensureNetwork(ctx context.Context, id string) error {
	unlock := d.locks.lock(id)
	defer unlock()
	nw, err := d.network(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	changed, err := d.ensureForwarding(ctx, nw)
	if err == nil && changed {
		err = d.saveNetwork(nw)
	}
	return err
}
