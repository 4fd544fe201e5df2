package driver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Backoff of a leftover endpoint's teardown retries.
const (
	retryFirst = 10 * time.Second
	retryMax   = time.Hour
)

// reconcileEndpoints tears down the endpoints of a network Docker has but
// no longer lists (their container was removed or stopped while docker-cni
// was down): DEL, their addresses released, the record gone.
func (d *Driver) reconcileEndpoints(ctx context.Context, nw *state.Network, listed map[string]bool, minAge time.Duration) error {
	eps, err := state.Read(d.store, func(tx *state.Tx) ([]*state.Endpoint, error) { return tx.EndpointsOf(nw.ID) })
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range eps {
		// Young endpoints may still be in the making; one that left a
		// moment ago is being removed (Docker's DeleteEndpoint is coming).
		if listed[ep.ID] || d.now().Sub(ep.Created) < minAge || ep.Leftover != "" ||
			(ep.Attachment == nil && d.now().Sub(ep.LeftAt) < minAge) {
			continue
		}
		d.log.WarnContext(ctx, "endpoint gone from Docker without Leave and DeleteEndpoint; cleaning up",
			"network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID), "container", ep.Name)
		if err := d.dropEndpoint(ctx, ep.ID, nw.PoolIDs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// dropEndpoint tears an endpoint down as Leave, DeleteEndpoint and
// ReleaseAddress would have, under its lock.
func (d *Driver) dropEndpoint(ctx context.Context, id string, poolIDs []string) error {
	unlock := d.locks.lock(id)
	defer unlock()
	ep, err := d.existingEndpoint(id)
	if ep == nil || err != nil {
		return err
	}
	ctx = withEndpoint(ctx, ep)
	if err := d.removeEndpoint(ctx, ep); err != nil {
		return d.leaveBehind(ctx, ep, err)
	}
	d.count.Add(observe.EndpointDropped)
	return d.pools.ReleaseAddresses(ctx, poolIDs, ep.Addresses)
}

// removeEndpoint detaches an endpoint and forgets it.
func (d *Driver) removeEndpoint(ctx context.Context, ep *state.Endpoint) error {
	if err := d.detach(ctx, ep); err != nil {
		return err
	}
	if err := d.store.Update(func(tx *state.Tx) error { return tx.DeleteEndpoint(ep.ID) }); err != nil {
		return fmt.Errorf("forget endpoint %s: %w", translate.ShortID(ep.ID), err)
	}
	return nil
}

// leaveBehind records that an endpoint's teardown failed: it is retried
// with a backoff, and shown as a leftover, while the rest goes on.
func (d *Driver) leaveBehind(ctx context.Context, ep *state.Endpoint, cause error) error {
	ep.Leftover = cause.Error()
	wait := min(retryFirst<<min(ep.Retries, 16), retryMax)
	ep.Retries++
	ep.RetryAt = d.now().Add(wait)
	d.log.ErrorContext(ctx, "endpoint teardown failed; left over, retried later", "endpoint", translate.ShortID(ep.ID),
		"network", translate.ShortID(ep.NetworkID), "retries", ep.Retries, "retry_in", wait, "err", cause)
	if err := d.saveEndpoint(ep); err != nil {
		return errors.Join(cause, err)
	}
	return nil
}

// retryLeftovers retries the teardown of the endpoints left over whose
// time has come.
func (d *Driver) retryLeftovers(ctx context.Context) error {
	eps, err := state.Read(d.store, (*state.Tx).Endpoints)
	if err != nil {
		return err
	}
	for _, ep := range eps {
		if ep.Leftover == "" || d.now().Before(ep.RetryAt) {
			continue
		}
		if err := d.retryLeftover(ctx, ep.ID); err != nil {
			return err
		}
	}
	return nil
}

func (d *Driver) retryLeftover(ctx context.Context, id string) error {
	unlock := d.locks.lock(id)
	defer unlock()
	ep, err := d.existingEndpoint(id)
	if ep == nil || err != nil {
		return err
	}
	ctx = withEndpoint(ctx, ep)
	d.count.Add(observe.LeftoverRetried)
	if err := d.removeEndpoint(ctx, ep); err != nil {
		return d.leaveBehind(ctx, ep, err)
	}
	d.log.InfoContext(ctx, "leftover endpoint torn down", "endpoint", translate.ShortID(ep.ID), "after_retries", ep.Retries)
	return nil
}

// deleteEndpoints tears down the endpoints a network still has when it is
// deleted. One whose DEL fails does not block the rest, nor the network's
// deletion: it is left over and retried.
func (d *Driver) deleteEndpoints(ctx context.Context, nw *state.Network) error {
	eps, err := state.Read(d.store, func(tx *state.Tx) ([]*state.Endpoint, error) { return tx.EndpointsOf(nw.ID) })
	if err != nil {
		return err
	}
	var errs []error
	for _, ep := range eps {
		if ep.Leftover != "" {
			continue
		}
		d.log.WarnContext(ctx, "deleting stale endpoint with its network", "network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID))
		if _, err := d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: nw.ID, EndpointID: ep.ID}); err != nil {
			errs = append(errs, d.leftOver(ctx, ep.ID, err))
		}
	}
	return errors.Join(errs...)
}

// leftOver marks endpoint id left over after its teardown failed.
func (d *Driver) leftOver(ctx context.Context, id string, cause error) error {
	unlock := d.locks.lock(id)
	defer unlock()
	ep, err := d.existingEndpoint(id)
	if ep == nil || err != nil {
		return err
	}
	return d.leaveBehind(ctx, ep, cause)
}
