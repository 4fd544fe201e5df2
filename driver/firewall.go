package driver

import (
	"context"
	"errors"
	"fmt"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// forwardingRules are the DOCKER-USER accept rules a network needs: only a
// bound network whose chain has no firewall plugin (generated chains have
// one) and only when enabled.
func (d *Driver) forwardingRules(nw *state.Network) []translate.AcceptRule {
	if !d.cfg.DockerUserRules || !nw.Bound || d.fw == nil {
		return nil
	}
	pl, err := cniconf.Parse(nw.Conflist)
	if err != nil || pl.HasPlugin("firewall") {
		return nil
	}
	return translate.DockerUserRules(nw.ID, pl.Subnets())
}

// ensureForwarding puts a network's DOCKER-USER rules in place. dockerd sets
// the FORWARD policy to DROP and bridged traffic passes iptables, so without
// them pods and containers on a conflist with no firewall plugin cannot reach
// each other.
func (d *Driver) ensureForwarding(ctx context.Context, nw *state.Network) error {
	rules := d.forwardingRules(nw)
	if len(rules) == 0 {
		return nil
	}
	done, err := d.fw.Ensure(ctx, translate.DockerUserChain, rules)
	if err != nil {
		return fmt.Errorf("accept CNI network %q in %s: %w", nw.CNINetwork, translate.DockerUserChain, err)
	}
	if done {
		d.log.InfoContext(ctx, "accepting the network's traffic in "+translate.DockerUserChain+" (its conflist has no firewall plugin; turn off with --docker-user-rules=false)",
			"network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork, "rules", len(rules))
	}
	return nil
}

func (d *Driver) removeForwarding(ctx context.Context, nw *state.Network) {
	if rules := d.forwardingRules(nw); len(rules) > 0 {
		d.fw.Remove(ctx, translate.DockerUserChain, rules)
	}
}

// EnsureAll restores the DOCKER-USER rules of every network, e.g. after a
// reboot or a dockerd restart that recreated the chain.
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
		if err := d.ensureForwarding(ctx, nw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
