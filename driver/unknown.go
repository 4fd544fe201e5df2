package driver

import (
	"context"
	"errors"
	"fmt"
	"path"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// awaitRecord waits for a rebuild from the engines when the state has no
// record the call needs (known says whether it has): docker-cni lost its
// state, and the engine knows the network or endpoint. always says to wait
// even once a complete rebuild ran since start (calls that make things);
// teardown calls wait only for the first one, and otherwise tear down from
// what the host shows. It runs before the call takes its locks, since the
// rebuild takes them too.
func (d *Driver) awaitRecord(ctx context.Context, known func() bool, always bool) {
	if d.rebuilder == nil || known() || (!always && d.rebuilder.Settled()) {
		return
	}
	d.rebuilder.Await(ctx)
}

func (d *Driver) hasNetwork(id string) func() bool {
	return func() bool {
		_, err := d.network(id)
		return !errors.Is(err, state.ErrNotFound)
	}
}

func (d *Driver) hasEndpoint(id string) func() bool {
	return func() bool {
		_, err := d.endpoint(id)
		return !errors.Is(err, state.ErrNotFound)
	}
}

// detachUnknown tears down an attachment no record knows (docker-cni's
// state was lost and no engine listed the endpoint): DEL as libcni's cache
// recorded the ADD, then the host interface and the scratch netns the
// endpoint's ID names. Nothing found is nothing to do.
func (d *Driver) detachUnknown(ctx context.Context, networkID, endpointID string) error {
	cniNetwork := ""
	if nw, err := d.network(networkID); err == nil {
		cniNetwork = nw.CNINetwork
	}
	d.deleteHostLinkLater(ctx, translate.HostIfName(endpointID))
	scratch := scratchNS(d.cfg.ScratchDir, endpointID)
	defer d.ns.Remove(scratch)
	if d.cache == nil {
		return nil
	}
	c, _, err := d.cache.Cached(endpointID, cniNetwork)
	if err != nil || c == nil {
		return err
	}
	rt := runtimeConf(&state.Attachment{ContainerID: c.ContainerID, NetNS: c.NetNS, IfName: c.IfName, Args: c.CniArgs, Capability: c.CapabilityArgs})
	if !d.ns.IsNetNS(rt.NetNS) {
		rt.NetNS = ""
	}
	if err := d.cni.Del(ctx, c.Config, rt); err != nil {
		return fmt.Errorf("cni DEL %s as cached: %w", c.Network, err)
	}
	d.log.WarnContext(ctx, "detached an endpoint docker-cni had no record of, as the CNI cache recorded it",
		"endpoint", translate.ShortID(endpointID), "cni_network", c.Network, "ifname", c.IfName)
	return nil
}

// scratchNS is the path of an endpoint's scratch netns.
func scratchNS(dir, endpointID string) string {
	return path.Join(dir, translate.ShortID(endpointID))
}

// deleteUnknownNetwork removes what a network no record knows left on the
// host: the rules commented with its ID, and its bridge where the name is
// the one docker-cni gives a generated network's and nothing uses it.
func (d *Driver) deleteUnknownNetwork(ctx context.Context, id string) error {
	var errs []error
	if d.fw != nil {
		errs = append(errs, d.fw.RemoveTagged(ctx, translate.NetworkRuleComment(id)))
	}
	bridge := translate.GeneratedBridgeName(id)
	if d.ns.HostLinkExists(bridge) {
		errs = append(errs, d.deleteBridge(ctx, &state.Network{ID: id, BridgeName: bridge, OwnsBridge: true}))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.log.WarnContext(ctx, "deleted a network docker-cni had no record of: removed its rules and bridge, if any", "network", translate.ShortID(id), "bridge", bridge)
	return nil
}
