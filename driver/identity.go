package driver

import (
	"context"
	"errors"
	"net/netip"
	"time"

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

// cacheWait bounds how long Join waits for the engines' container cache to
// learn of a container created a moment ago. It waits on docker-cni's own
// cache, never on the Docker API.
const cacheWait = time.Second

// identity gathers what is known of the endpoint's container: its name
// (from IPAM) and, from the container cache, its ID and labels.
func (d *Driver) identity(ctx context.Context, ep *state.Endpoint) translate.Identity {
	id := translate.Identity{Name: ep.Name}
	if ep.Name == "" || d.ctrs == nil {
		return id
	}
	deadline := time.Now().Add(cacheWait)
	for {
		if c, ok := d.ctrs.Lookup(ep.Name); ok {
			id.ContainerID, id.Labels = c.ID, c.Labels
			return id
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			d.log.DebugContext(ctx, "container not in the engines' cache yet; joining without its labels", "endpoint", translate.ShortID(ep.ID), "container", ep.Name)
			return id
		}
		time.Sleep(20 * time.Millisecond)
	}
}
