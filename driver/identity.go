package driver

import (
	"context"
	"errors"
	"net/netip"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// fromReservations fills in what IPAM learnt with the endpoint's
// addresses: the container name the engine sent (newer engines send it in
// RequestAddress) and the gateways the IPAM plugin returned.
func (d *Driver) fromReservations(nw *state.Network, ep *state.Endpoint) error {
	return d.store.View(func(tx *state.Tx) error {
		for _, a := range ep.Addresses {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				continue
			}
			for _, pool := range nw.PoolIDs {
				r, err := tx.Reservation(pool, p.Addr().String())
				if errors.Is(err, state.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				if r.Name != "" {
					ep.Name = r.Name
				}
				if r.Gateway != "" {
					ep.Gateways = append(ep.Gateways, r.Gateway)
				}
			}
		}
		return nil
	})
}

// identity gathers what is known of the endpoint's container: its name
// (from IPAM) and, from the engines' container cache, its ID and labels.
// It never waits: the cache learns of a container from its create event,
// before it starts; a container it does not know yet joins without labels
// (logged).
func (d *Driver) identity(ctx context.Context, ep *state.Endpoint) translate.Identity {
	id := translate.Identity{Name: ep.Name}
	if ep.Name == "" || d.ctrs == nil {
		return id
	}
	if c, ok := d.ctrs.Lookup(ep.Name); ok {
		id.ContainerID, id.Labels = c.ID, c.Labels
		return id
	}
	d.log.InfoContext(ctx, "container not in the engines' cache yet; joining without its labels", "endpoint", translate.ShortID(ep.ID), "container", ep.Name)
	return id
}
