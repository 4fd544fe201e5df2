package driver

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/containernetworking/cni/libcni"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Leave runs CNI DEL for the endpoint's attachment.
func (d *Driver) Leave(ctx context.Context, req *network.LeaveRequest) (*struct{}, error) {
	if req.EndpointID == "" {
		return nil, cnm.MissingID("leave", "no endpoint ID in the request")
	}
	d.awaitRecord(ctx, d.hasEndpoint(req.EndpointID), false)
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.existingEndpoint(req.EndpointID)
	if ep == nil && err == nil {
		err = d.detachUnknown(ctx, req.NetworkID, req.EndpointID)
	}
	if ep == nil || err != nil {
		return nil, err
	}
	if err := d.detach(withEndpoint(ctx, ep), ep); err != nil {
		return nil, fmt.Errorf("leave endpoint %s on network %s: %w", translate.ShortID(ep.ID), translate.ShortID(ep.NetworkID), err)
	}
	return nil, nil
}

// detach runs DEL with the recorded configuration, removes what move mode
// left in the host, and clears the attachment. It is safe to repeat, and
// works when the sandbox netns is already gone.
func (d *Driver) detach(ctx context.Context, ep *state.Endpoint) error {
	att := ep.Attachment
	if att == nil {
		// libnetwork may have moved the interface back to the host after
		// Leave; it is ours to remove.
		d.deleteHostLinkLater(ctx, translate.HostIfName(ep.ID))
		return nil
	}
	if err := d.unpublish(ctx, ep); err != nil {
		return err
	}
	rt, err := d.delRuntimeConf(ctx, ep)
	if err != nil {
		return err
	}
	if err := d.cni.Del(ctx, att.Conflist, rt); err != nil {
		return fmt.Errorf("cni DEL: %w", err)
	}
	if att.HostIfName != "" {
		d.deleteHostLinkLater(ctx, att.HostIfName)
	}
	if err := d.ns.Remove(att.ScratchNS); err != nil {
		return err
	}
	ep.Attachment, ep.LeftAt = nil, d.now()
	if err := d.saveEndpoint(ep); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "detached", "endpoint", translate.ShortID(ep.ID), "mode", att.Mode, "ifname", att.IfName)
	return nil
}

// delRuntimeConf is the runtime conf DEL runs with: ADD's, in the netns
// where the interface can be found. An interface handed to libnetwork is
// reclaimed into the scratch netns first.
func (d *Driver) delRuntimeConf(ctx context.Context, ep *state.Endpoint) (*libcni.RuntimeConf, error) {
	att := ep.Attachment
	rt := runtimeConf(att)
	switch {
	case att.Mode == string(translate.JoinHandover) && att.MAC == "":
		// The interface never left where ADD put it (ADD or its checks
		// failed): DEL runs there.
		if !d.ns.IsNetNS(rt.NetNS) {
			rt.NetNS = ""
		}
	case att.Mode != string(translate.JoinDirect) && att.SkipReclaim:
		// No plugin needs the interface: DEL runs without it, and the
		// interface goes with its host end (deleteHostLink below).
		rt.NetNS = ""
	case att.Mode != string(translate.JoinDirect):
		if err := d.reclaim(ctx, ep, att); err != nil {
			return nil, err
		}
		rt.NetNS = att.ScratchNS
	case !d.ns.IsNetNS(rt.NetNS):
		rt.NetNS = ""
	}
	return rt, nil
}

// reclaim gives a move-mode chain its interface back before DEL: libnetwork
// moved and renamed it, and plugins (bridge's ipMasq teardown among them)
// read the link's name and addresses in the netns ADD ran in to undo their
// work. The link is looked for by MAC in the sandbox, then in the host.
func (d *Driver) reclaim(ctx context.Context, ep *state.Endpoint, att *state.Attachment) error {
	if !d.ns.IsNetNS(att.ScratchNS) {
		if err := d.ns.Create(att.ScratchNS); err != nil {
			return fmt.Errorf("scratch netns: %w", err)
		}
	}
	if att.MAC == "" {
		return nil
	}
	var addrs []netip.Prefix
	for _, a := range ep.Addresses {
		if p, err := netip.ParsePrefix(a); err == nil {
			addrs = append(addrs, p)
		}
	}
	for _, from := range []string{att.SandboxKey, hostNetNS} {
		if !d.ns.IsNetNS(from) {
			continue
		}
		found, err := d.ns.Reclaim(from, att.MAC, att.ScratchNS, att.IfName, addrs)
		if err != nil {
			return fmt.Errorf("reclaim interface %s from %s: %w", att.MAC, from, err)
		}
		if found {
			return nil
		}
	}
	d.log.WarnContext(ctx, "interface already gone before DEL", "endpoint", translate.ShortID(ep.ID), "mac", att.MAC)
	return nil
}

// runtimeConf is the libcni runtime configuration an attachment was added
// with; DEL must use the same.
func runtimeConf(a *state.Attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    a.ContainerID,
		NetNS:          a.NetNS,
		IfName:         a.IfName,
		Args:           a.Args,
		CapabilityArgs: a.Capability,
	}
}
