package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// NetworkChecker tells whether Docker still has a network; package engine
// implements it over the Docker API.
type NetworkChecker interface {
	Network(ctx context.Context, id string) (engine.Liveness, error)
}

// PoolReleaser releases a pool and every address still reserved in it;
// the IPAM driver implements it.
type PoolReleaser interface {
	ReleasePool(ctx context.Context, req *ipam.ReleasePoolRequest) (*struct{}, error)
}

// Reconcile removes what Docker dropped without telling docker-cni: Docker
// skips DeleteNetwork and ReleasePool when the plugin is down at
// `docker network rm`, and a failed `docker network create` may leave a
// pool unclaimed. Records younger than minAge are left alone, as their
// network may still be in the making. It runs outside any handler.
func (d *Driver) Reconcile(ctx context.Context, engines NetworkChecker, pools PoolReleaser, minAge time.Duration) error {
	var errs []error
	nws, err := d.store.Networks.List()
	if err != nil {
		return err
	}
	for _, nw := range nws {
		if d.now().Sub(nw.Created) < minAge {
			continue
		}
		live, err := engines.Network(ctx, nw.ID)
		if err != nil {
			d.log.DebugContext(ctx, "reconcile: cannot tell whether Docker has the network", "network", translate.ShortID(nw.ID), "err", err)
		}
		if live != engine.Gone {
			continue
		}
		d.log.WarnContext(ctx, "network gone from Docker without DeleteNetwork; cleaning up", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
		if _, err := d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: nw.ID}); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, id := range nw.PoolIDs {
			if _, err := pools.ReleasePool(ctx, &ipam.ReleasePoolRequest{PoolID: id}); err != nil {
				errs = append(errs, fmt.Errorf("release pool %s of stale network %s: %w", id, translate.ShortID(nw.ID), err))
			}
		}
	}
	ps, err := d.store.Pools.List()
	if err != nil {
		return err
	}
	for _, p := range ps {
		if d.now().Sub(p.Created) < minAge {
			continue
		}
		stale := p.NetworkID == ""
		if !stale {
			_, err := d.store.Networks.Get(p.NetworkID)
			stale = errors.Is(err, state.ErrNotFound)
		}
		if !stale {
			continue
		}
		if n := d.reservationsIn(p.ID); n > 0 && d.sharesSubnetWithLiveNetwork(p, ps) {
			// Creates on one subnet may have interleaved, leaving this
			// pool's claim on another live network until an endpoint
			// corrects it: addresses in use are not released on a claim.
			d.log.WarnContext(ctx, "pool looks stale but holds addresses on a subnet a live network uses; keeping it", "pool", p.ID, "addresses", n)
			continue
		}
		d.log.WarnContext(ctx, "pool without a network; releasing", "pool", p.ID)
		if _, err := pools.ReleasePool(ctx, &ipam.ReleasePoolRequest{PoolID: p.ID}); err != nil {
			errs = append(errs, fmt.Errorf("release stale pool %s: %w", p.ID, err))
		}
	}
	return errors.Join(errs...)
}

// reservationsIn counts the addresses reserved in a pool.
func (d *Driver) reservationsIn(poolID string) int {
	rs, err := d.store.Reservations.List()
	if err != nil {
		return 1 // unknown: count as in use
	}
	n := 0
	for _, r := range rs {
		if r.PoolID == poolID {
			n++
		}
	}
	return n
}

// sharesSubnetWithLiveNetwork reports whether another pool on p's subnet is
// claimed by a network docker-cni still has.
func (d *Driver) sharesSubnetWithLiveNetwork(p *state.Pool, pools []*state.Pool) bool {
	for _, o := range pools {
		if o.ID == p.ID || o.Subnet != p.Subnet || o.NetworkID == "" {
			continue
		}
		if _, err := d.store.Networks.Get(o.NetworkID); err == nil {
			return true
		}
	}
	return false
}
