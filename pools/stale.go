package pools

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/docker-cni/docker-cni/state"
)

// Stale lists the pools reconcile should release: older than minAge and
// claimed by no network docker-cni has (a failed `docker network create`, or
// a network removed while docker-cni was down). Creates on one subnet may
// have interleaved, leaving a live network's claim on the wrong pool until
// an endpoint corrects it; so a pool that holds addresses on a subnet a live
// network uses is kept: addresses in use are never released on a claim.
func (a *Authority) Stale(ctx context.Context, minAge time.Duration) ([]string, error) {
	var out []string
	err := a.store.View(func(tx *state.Tx) error {
		ps, err := tx.Pools()
		if err != nil {
			return err
		}
		for _, p := range ps {
			stale, err := a.isStale(ctx, tx, p, minAge)
			if err != nil {
				return err
			}
			if stale {
				out = append(out, p.ID)
			}
		}
		return nil
	})
	return out, err
}

func (a *Authority) isStale(ctx context.Context, tx *state.Tx, p *state.Pool, minAge time.Duration) (bool, error) {
	if a.now().Sub(p.Created) < minAge {
		return false, nil
	}
	if p.NetworkID != "" {
		_, err := tx.Network(p.NetworkID)
		if !errors.Is(err, state.ErrNotFound) {
			return false, err
		}
	}
	rs, err := tx.ReservationsIn(p.ID)
	if err != nil || len(rs) == 0 {
		return err == nil, err
	}
	shared, err := sharesSubnetWithLiveNetwork(tx, p)
	if shared {
		a.log.WarnContext(ctx, "pool looks stale but holds addresses on a subnet a live network uses; keeping it", "pool", p.ID, "addresses", len(rs))
	}
	return !shared && err == nil, err
}

// sharesSubnetWithLiveNetwork reports whether another pool on p's subnet is
// claimed by a network docker-cni still has.
func sharesSubnetWithLiveNetwork(tx *state.Tx, p *state.Pool) (bool, error) {
	others, err := tx.PoolsOnSubnet(p.Subnet)
	if err != nil {
		return false, err
	}
	for _, o := range others {
		if o.ID == p.ID || o.NetworkID == "" {
			continue
		}
		if _, err := tx.Network(o.NetworkID); err == nil {
			return true, nil
		}
	}
	return false, nil
}

func parsePrefix(s string) (netip.Prefix, error) { return netip.ParsePrefix(s) }
