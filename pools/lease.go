package pools

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/docker-cni/docker-cni/state"
)

// followLease re-reads a flannel network's subnet file before a
// reservation: when flanneld got a new lease for the node, new containers
// get addresses from it (the pool record follows, under the same ID), and
// the user is told what happens to the running ones.
func (a *Authority) followLease(ctx context.Context, pool *state.Pool, subnet netip.Prefix) (*state.Pool, netip.Prefix, error) {
	if pool.SubnetFile == "" {
		return pool, subnet, nil
	}
	fresh := *pool
	if err := a.bindPool(&fresh, netip.Prefix{}); err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("pool %s: %w", pool.ID, err)
	}
	if fresh.Subnet == pool.Subnet {
		return pool, subnet, nil
	}
	newSubnet, err := netip.ParsePrefix(fresh.Subnet)
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	a.mu.Lock()
	err = a.store.Update(func(tx *state.Tx) error { return tx.PutPool(&fresh) })
	a.mu.Unlock()
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("save pool %s: %w", pool.ID, err)
	}
	a.log.WarnContext(ctx, "flannel gave this node a new subnet (its subnet file changed): new containers get addresses in the new subnet; "+
		"running containers keep their addresses in the old one, which other nodes no longer route here: restart them to move them "+
		"(docker network inspect keeps showing the old subnet until the network is recreated); "+
		"flannel's bridge delegate refuses new containers while the bridge has the old gateway, unless the delegate sets forceAddress "+
		"(or delete the bridge once nothing uses it)",
		"cni_network", pool.CNINetwork, "subnet_file", pool.SubnetFile, "old_subnet", pool.Subnet, "new_subnet", fresh.Subnet, "pool", pool.ID)
	return &fresh, newSubnet, nil
}
