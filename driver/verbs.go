package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// The CNI verbs beyond ADD and DEL, where a conflist's version has them
// (translate.VerbsFor): STATUS before Join's ADD, CHECK and GC at
// reconcile.

// ready asks the chain's plugins whether they can ADD (STATUS), before
// anything of the Join is set up.
func (d *Driver) ready(ctx context.Context, nw *state.Network, plan translate.JoinPlan) error {
	if !translate.VerbsFor(plan.ListVersion, nw.Bound).Status {
		return nil
	}
	if err := d.cni.Status(ctx, plan.Conflist); err != nil {
		return fmt.Errorf("CNI network %q is not ready (CNI STATUS): %w", nw.CNINetwork, err)
	}
	return nil
}

// Verify runs CHECK over the live attachments it can hold for that were
// not checked within every (all of them when every is 0; none when it is
// negative), and GC over the networks docker-cni owns whole. A failed
// CHECK is logged and counted, not repaired: the container keeps what it
// has, as with other runtimes.
func (d *Driver) Verify(ctx context.Context, every time.Duration) error {
	nws, err := state.Read(d.store, (*state.Tx).Networks)
	if err != nil {
		return err
	}
	var errs []error
	live := map[string]bool{}
	for _, nw := range nws {
		if every >= 0 {
			errs = append(errs, d.checkNetwork(ctx, nw, every, live))
		}
		errs = append(errs, d.collect(ctx, nw))
	}
	err = errors.Join(errs...)
	if every >= 0 && err == nil {
		d.pruneChecks(live)
	}
	return err
}

// checkNetwork CHECKs the network's checkable attachments due a check,
// noting every endpoint it saw in live.
func (d *Driver) checkNetwork(ctx context.Context, nw *state.Network, every time.Duration, live map[string]bool) error {
	eps, err := state.Read(d.store, func(tx *state.Tx) ([]*state.Endpoint, error) { return tx.EndpointsOf(nw.ID) })
	if err != nil {
		return err
	}
	for _, ep := range eps {
		live[ep.ID] = true
		if d.checkDue(ep, every) {
			d.checkEndpoint(ctx, nw, ep.ID)
		}
	}
	return nil
}

// pruneChecks forgets the endpoints that are gone.
func (d *Driver) pruneChecks(live map[string]bool) {
	d.checkedMu.Lock()
	defer d.checkedMu.Unlock()
	for id := range d.checked {
		if !live[id] {
			delete(d.checked, id)
		}
	}
}

// checkDue says whether an endpoint's attachment takes CHECK and was not
// checked within every.
func (d *Driver) checkDue(ep *state.Endpoint, every time.Duration) bool {
	a := ep.Attachment
	if a == nil || a.Result == nil || !translate.Checkable(translate.CheckFacts{Mode: translate.JoinMode(a.Mode), IfName: a.IfName}) {
		return false
	}
	list, err := translate.ParseList(a.Conflist)
	if err != nil || !translate.VerbsFor(list.CNIVersion, false).Check {
		return false
	}
	d.checkedMu.Lock()
	defer d.checkedMu.Unlock()
	last, ok := d.checked[ep.ID]
	return !ok || every == 0 || d.now().Sub(last) >= every
}

// checkEndpoint CHECKs one attachment under its endpoint's lock (a Leave
// may have come first).
func (d *Driver) checkEndpoint(ctx context.Context, nw *state.Network, id string) {
	unlock := d.locks.lock(id)
	defer unlock()
	ep, err := d.endpoint(id)
	if err != nil || ep.Attachment == nil {
		d.forgetCheck(id)
		return
	}
	ctx = withEndpoint(ctx, ep)
	d.checkedMu.Lock()
	d.checked[id] = d.now()
	d.checkedMu.Unlock()
	a := ep.Attachment
	nameNow := a.IfName
	if a.MAC != "" {
		if nameNow, err = d.ns.LinkNameByMAC(a.NetNS, a.MAC); err != nil {
			d.log.DebugContext(ctx, "CNI CHECK skipped: the container's netns cannot be read", "err", err)
			return
		}
	}
	facts := translate.CheckFacts{Mode: translate.JoinMode(a.Mode), IfName: a.IfName, NameNow: nameNow,
		ResultMAC: translate.StoredResultMAC(a.Result, a.IfName), MAC: a.MAC}
	if !translate.Checkable(facts) {
		d.log.DebugContext(ctx, "CNI CHECK skipped: the engine changed the interface as it took it over (its name or MAC)",
			"ifname", a.IfName, "now", nameNow, "result_mac", facts.ResultMAC, "mac", a.MAC)
		return
	}
	if err := d.cni.Check(ctx, ep.Attachment.Conflist, runtimeConf(ep.Attachment)); err != nil {
		d.count.Add(observe.CheckFailed)
		d.log.WarnContext(ctx, "CNI CHECK failed: the container's network is not as its chain set it up (left as it is)",
			"cni_network", nw.CNINetwork, "mode", ep.Attachment.Mode, "ifname", ep.Attachment.IfName, "err", err)
		return
	}
	d.log.DebugContext(ctx, "CNI CHECK passed", "cni_network", nw.CNINetwork)
}

// forgetCheck drops an endpoint from the CHECK schedule.
func (d *Driver) forgetCheck(id string) {
	d.checkedMu.Lock()
	delete(d.checked, id)
	d.checkedMu.Unlock()
}

// collect runs GC over a network docker-cni owns whole, with its live
// attachments as the valid ones. Joins of the network wait meanwhile, so
// an attachment ADD is making is never collected.
func (d *Driver) collect(ctx context.Context, nw *state.Network) error {
	list, err := translate.ParseList(nw.Conflist)
	if err != nil || !translate.VerbsFor(list.CNIVersion, nw.Bound).GC {
		return nil
	}
	ctx = observe.WithLogAttrs(ctx, slog.String("network", translate.ShortID(nw.ID)))
	unlock := d.adds.lock(nw.ID)
	defer unlock()
	eps, err := state.Read(d.store, func(tx *state.Tx) ([]*state.Endpoint, error) { return tx.EndpointsOf(nw.ID) })
	if err != nil {
		return err
	}
	var valid []types.GCAttachment
	for _, ep := range eps {
		if a := ep.Attachment; a != nil {
			valid = append(valid, types.GCAttachment{ContainerID: a.ContainerID, IfName: a.IfName})
		}
	}
	if err := d.cni.GC(ctx, nw.Conflist, valid); err != nil {
		return fmt.Errorf("network %s: CNI GC: %w", translate.ShortID(nw.ID), err)
	}
	d.count.Add(observe.NetworkCollected)
	d.log.DebugContext(ctx, "CNI GC ran", "cni_network", nw.CNINetwork, "valid_attachments", len(valid))
	return nil
}
