package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// NetworkChecker tells whether Docker still has a network, and which of its
// endpoints; package engine implements it over the Docker API.
type NetworkChecker interface {
	NetworkEndpoints(ctx context.Context, id string) (engine.Liveness, map[string]bool, error)
}

// Reconcile removes what Docker dropped without telling docker-cni: Docker
// skips DeleteNetwork, ReleasePool, Leave, DeleteEndpoint and ReleaseAddress
// when the plugin is down, and a failed `docker network create` may leave a
// pool unclaimed. Records younger than minAge are left alone, as they may
// still be in the making; an engine that does not answer keeps everything
// it might have. It runs outside any handler.
func (d *Driver) Reconcile(ctx context.Context, engines NetworkChecker, minAge time.Duration) error {
	errs := []error{d.reconcileNetworks(ctx, engines, minAge), d.retryLeftovers(ctx)}
	stale, err := d.pools.Stale(ctx, minAge)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, id := range stale {
		d.log.WarnContext(ctx, "pool without a network; releasing", "pool", id)
		if err := d.pools.ReleasePool(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("release stale pool %s: %w", id, err))
		} else {
			d.count.Add(observe.PoolReleased)
		}
	}
	return errors.Join(errs...)
}

// reconcileNetworks deletes the networks every engine says are gone, with
// their pools, and in the networks an engine has, the endpoints it does not
// list.
func (d *Driver) reconcileNetworks(ctx context.Context, engines NetworkChecker, minAge time.Duration) error {
	nws, err := state.Read(d.store, (*state.Tx).Networks)
	if err != nil {
		return err
	}
	var errs []error
	for _, nw := range nws {
		live, eps, err := engines.NetworkEndpoints(ctx, nw.ID)
		if err != nil {
			d.log.DebugContext(ctx, "reconcile: cannot tell whether Docker has the network", "network", translate.ShortID(nw.ID), "err", err)
		}
		switch {
		case live == engine.Alive:
			errs = append(errs, d.reconcileEndpoints(ctx, nw, eps, minAge))
		case live == engine.Gone && d.now().Sub(nw.Created) >= minAge:
			d.log.WarnContext(ctx, "network gone from Docker without DeleteNetwork; cleaning up", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
			err := d.dropNetwork(ctx, nw)
			if err == nil {
				d.count.Add(observe.NetworkDropped)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropNetwork deletes a network Docker no longer has, and releases its pools.
func (d *Driver) dropNetwork(ctx context.Context, nw *state.Network) error {
	unlock := d.locks.lock(nw.ID)
	err := d.deleteNetwork(ctx, nw)
	unlock()
	if err != nil {
		return fmt.Errorf("delete stale network %s: %w", translate.ShortID(nw.ID), err)
	}
	var errs []error
	for _, id := range nw.PoolIDs {
		if err := d.pools.ReleasePool(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("release pool %s of stale network %s: %w", id, translate.ShortID(nw.ID), err))
		}
	}
	return errors.Join(errs...)
}
