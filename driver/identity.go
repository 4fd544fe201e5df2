package driver

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// reservedName is the container name the engine gave IPAM with the
// endpoint's address (newer engines send it in RequestAddress).
func (d *Driver) reservedName(nw *state.Network, addrs []string) (string, error) {
	name := ""
	err := d.store.View(func(tx *state.Tx) error {
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a)
			if err != nil {
				continue
			}
			for _, pool := range nw.PoolIDs {
				r, err := tx.Reservation(pool, p.Addr().String())
				if err == nil && r.Name != "" {
					name = r.Name
					return nil
				}
				if err != nil && !errors.Is(err, state.ErrNotFound) {
					return err
				}
			}
		}
		return nil
	})
	return name, err
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
