package pools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// ClaimWindow is how long a pool may stay unclaimed: the time a `docker
// network create` takes from RequestPool to CreateNetwork, with room. An
// older unclaimed pool is left from a create that failed.
const ClaimWindow = 30 * time.Second

// Unclaimed finds, for each subnet Docker names in CreateNetwork, the
// docker-cni pool on it not yet claimed by a network: the oldest, if
// several (Docker creates networks in the order it requested their pools).
// The request carries no pool ID, so the pick can be wrong when creates on
// one subnet interleave; CorrectClaims fixes it with an endpoint's proof.
func (a *Authority) Unclaimed(subnets []string) ([]*state.Pool, error) {
	var out []*state.Pool
	err := a.store.View(func(tx *state.Tx) error {
		for _, s := range subnets {
			p, err := oldestUnclaimed(tx, s, nil)
			if err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func oldestUnclaimed(tx *state.Tx, subnet string, skip []string) (*state.Pool, error) {
	ps, err := tx.PoolsOnSubnet(subnet)
	if err != nil {
		return nil, fmt.Errorf("pools on %s: %w", subnet, err)
	}
	var best *state.Pool
	for _, p := range ps {
		if p.NetworkID == "" && !slices.Contains(skip, p.ID) && (best == nil || p.Created.Before(best.Created)) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no unclaimed docker-cni pool for %s: was it requested from this daemon?", subnet)
	}
	return best, nil
}

// Claim records the network and claims its pools (nw.PoolIDs) in one
// transaction. A pool another create claimed in the meantime is replaced by
// the oldest unclaimed pool of the same subnet, CNI network and range.
func (a *Authority) Claim(nw *state.Network) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store.Update(func(tx *state.Tx) error {
		for i, id := range nw.PoolIDs {
			p, err := claimable(tx, id, nw.PoolIDs)
			if err != nil {
				return err
			}
			p.NetworkID, nw.PoolIDs[i] = nw.ID, p.ID
			if err := tx.PutPool(p); err != nil {
				return err
			}
		}
		return tx.PutNetwork(nw)
	})
}

// claimable returns pool id if it is still unclaimed, else an equivalent
// one.
func claimable(tx *state.Tx, id string, skip []string) (*state.Pool, error) {
	p, err := tx.Pool(id)
	if err != nil {
		return nil, fmt.Errorf("pool %s: %w", id, err)
	}
	if p.NetworkID == "" {
		return p, nil
	}
	alt, err := oldestUnclaimed(tx, p.Subnet, skip)
	if err != nil || alt.CNINetwork != p.CNINetwork || alt.Range != p.Range {
		return nil, fmt.Errorf("pool %s was claimed by network %s meanwhile, and no equal pool is free: retry", id, translate.ShortID(p.NetworkID))
	}
	return alt, nil
}

// CorrectClaims fixes a wrong claim with the evidence an endpoint brings:
// its address is reserved in exactly one pool, the one Docker really uses
// for this network. When CreateNetwork claimed another pool of the same
// subnet (creates on one subnet interleaved), the two claims are swapped in
// one transaction, so that releasing a network never releases another's
// addresses. nw is updated in place.
func (a *Authority) CorrectClaims(nw *state.Network, addrs []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store.Update(func(tx *state.Tx) error {
		fresh, err := tx.Network(nw.ID)
		if err != nil {
			return err
		}
		for _, addr := range hostAddresses(addrs) {
			if err := a.correctFor(tx, fresh, addr); err != nil {
				return err
			}
		}
		*nw = *fresh
		return nil
	})
}

// correctFor swaps claims if addr is reserved in a pool of another network
// on the subnet of one of nw's pools.
func (a *Authority) correctFor(tx *state.Tx, nw *state.Network, addr string) error {
	rs, err := tx.ReservationsAt(addr)
	if err != nil {
		return err
	}
	for _, r := range rs {
		if slices.Contains(nw.PoolIDs, r.PoolID) {
			return nil
		}
	}
	for _, r := range rs {
		truePool, err := tx.Pool(r.PoolID)
		if err != nil {
			continue
		}
		for i, id := range nw.PoolIDs {
			claimed, err := tx.Pool(id)
			if err != nil || claimed.Subnet != truePool.Subnet {
				continue
			}
			a.log.Warn("pool claims of interleaved network creates swapped", "network", translate.ShortID(nw.ID), "pool", truePool.ID, "was", claimed.ID)
			return swap(tx, nw, i, claimed, truePool)
		}
	}
	return nil
}

// swap gives nw the pool truePool (claimed by another network, or none)
// in place of its pool number i, claimed, and the other network claimed.
func swap(tx *state.Tx, nw *state.Network, i int, claimed, truePool *state.Pool) error {
	if other, err := tx.Network(truePool.NetworkID); err == nil {
		for j, oid := range other.PoolIDs {
			if oid == truePool.ID {
				other.PoolIDs[j] = claimed.ID
			}
		}
		if err := tx.PutNetwork(other); err != nil {
			return err
		}
	}
	claimed.NetworkID, truePool.NetworkID = truePool.NetworkID, nw.ID
	nw.PoolIDs[i] = truePool.ID
	for _, p := range []*state.Pool{claimed, truePool} {
		if err := tx.PutPool(p); err != nil {
			return err
		}
	}
	return tx.PutNetwork(nw)
}

// hostAddresses strips the prefix lengths of CIDRs, skipping bad ones.
func hostAddresses(cidrs []string) []string {
	var out []string
	for _, c := range cidrs {
		if p, err := parsePrefix(c); err == nil {
			out = append(out, p.Addr().String())
		}
	}
	return out
}

// ReleasePool releases every address still reserved in a pool, then
// forgets the pool. An unknown pool is not an error (Docker repeats
// calls).
func (a *Authority) ReleasePool(ctx context.Context, id string) error {
	if desc, ok := translate.ParsePoolID(id); ok {
		// A rebuilt pool Docker never named yet takes its ID now.
		if _, err := a.adopt(id, desc); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var pool *state.Pool
	var rs []*state.Reservation
	err := a.store.View(func(tx *state.Tx) (err error) {
		if pool, err = tx.Pool(id); err != nil {
			return err
		}
		rs, err = tx.ReservationsIn(id)
		return err
	})
	if errors.Is(err, state.ErrNotFound) {
		a.log.WarnContext(ctx, "release of unknown pool", "pool", id)
		return nil
	}
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := a.release(ctx, pool, r); err != nil {
			return fmt.Errorf("release pool %s: %w", id, err)
		}
	}
	if err := a.store.Update(func(tx *state.Tx) error { return tx.DeletePool(id) }); err != nil {
		return fmt.Errorf("forget pool %s: %w", id, err)
	}
	a.log.InfoContext(ctx, "pool released", "pool", id)
	a.removeGeneratedStore(ctx, pool)
	return nil
}
