package driver

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Join runs the network's CNI chain for the endpoint, as translate.PlanJoin
// decides: straight into the sandbox netns when it exists (Docker Engine >=
// 28; the interface is then handed to libnetwork under the same name, or,
// with -o cni.join=direct, left there), else in a scratch netns whose
// interface libnetwork moves (move).
func (d *Driver) Join(ctx context.Context, req *network.JoinRequest) (*cnm.JoinResponse, error) {
	if req.NetworkID == "" || req.EndpointID == "" {
		return nil, cnm.MissingID("join", "the request names no network or no endpoint")
	}
	d.awaitRecord(ctx, func() bool { return d.hasNetwork(req.NetworkID)() && d.hasEndpoint(req.EndpointID)() }, true)
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	resp, err := d.join(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("join endpoint %s on network %s: %w", translate.ShortID(req.EndpointID), translate.ShortID(req.NetworkID), err)
	}
	return resp, nil
}

func (d *Driver) join(ctx context.Context, req *network.JoinRequest) (_ *cnm.JoinResponse, retErr error) {
	nw, ep, err := d.joinRecords(ctx, req)
	if err != nil {
		return nil, err
	}
	ctx = withEndpoint(ctx, ep)
	plan, err := d.plan(ctx, nw, ep, req.SandboxKey)
	if err != nil {
		return nil, err
	}
	if err := d.ready(ctx, nw, plan); err != nil {
		return nil, err
	}
	// GC of the network waits until ADD is cached and recorded.
	unlockAdds := d.adds.rlock(nw.ID)
	defer unlockAdds()
	// Record the attachment before ADD: if the daemon dies mid-ADD, DEL
	// still knows what to undo.
	att := attachmentOf(plan, ep.ID, req.SandboxKey, d.now())
	ep.Attachment = att
	if err := d.saveEndpoint(ep); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			d.rollbackJoin(ctx, ep)
		}
	}()
	if err := d.prepareNetNS(plan); err != nil {
		return nil, err
	}
	resp, err := d.add(ctx, nw, plan, att)
	if err != nil {
		return nil, err
	}
	if err := d.saveEndpoint(ep); err != nil {
		return nil, err
	}
	if err := d.publishAtJoin(ctx, ep, plan, req.Options); err != nil {
		return nil, err
	}
	d.log.InfoContext(ctx, "joined", "network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID), "cni_network", nw.CNINetwork,
		"mode", att.Mode, "ifname", att.IfName, "sandbox", req.SandboxKey, "addresses", ep.Addresses)
	return resp, nil
}

// joinRecords loads the network and endpoint of a Join; a repeated Join
// (Docker retries on transport errors) first undoes the earlier one.
func (d *Driver) joinRecords(ctx context.Context, req *network.JoinRequest) (*state.Network, *state.Endpoint, error) {
	nw, err := d.network(req.NetworkID)
	if err != nil {
		return nil, nil, fmt.Errorf("network: %w", err)
	}
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return nil, nil, fmt.Errorf("endpoint: %w", err)
	}
	if ep.Attachment != nil {
		if err := d.detach(ctx, ep); err != nil {
			return nil, nil, err
		}
	}
	d.refreshBinding(ctx, nw)
	return nw, ep, nil
}

// plan gathers the sandbox facts and the container's identity, and plans.
func (d *Driver) plan(ctx context.Context, nw *state.Network, ep *state.Endpoint, sandboxKey string) (translate.JoinPlan, error) {
	sb := translate.SandboxFacts{Key: sandboxKey, Exists: d.ns.IsNetNS(sandboxKey)}
	if sb.Exists {
		var err error
		if sb.Links, err = d.ns.LinkNames(sandboxKey); err != nil {
			return translate.JoinPlan{}, err
		}
		if sb.Default4, sb.Default6, err = d.ns.DefaultRoutes(sandboxKey); err != nil {
			return translate.JoinPlan{}, err
		}
	}
	return translate.PlanJoin(
		joinNetwork(nw),
		translate.JoinEndpoint{ID: ep.ID, Addresses: ep.Addresses, Gateways: ep.Gateways, MAC: ep.MAC, IfName: ep.IfName, Identity: d.identity(ctx, ep)},
		sb, translate.JoinHost{ScratchDir: d.cfg.ScratchDir, K8sNamespace: d.cfg.K8sNamespace})
}

// attachmentOf is the record of a planned attachment, before ADD.
func attachmentOf(p translate.JoinPlan, containerID, sandboxKey string, now time.Time) *state.Attachment {
	return &state.Attachment{
		Mode: string(p.Mode), SandboxKey: sandboxKey, NetNS: p.NetNS, ScratchNS: p.ScratchNS,
		ContainerID: containerID, IfName: p.IfName, HostIfName: p.HostIfName,
		Args: p.Args, Capability: p.Capability, Conflist: p.Conflist, Added: now,
	}
}

// prepareNetNS makes a fresh scratch netns where the plan runs ADD in one.
func (d *Driver) prepareNetNS(p translate.JoinPlan) error {
	if !p.MakeScratch {
		return nil
	}
	if err := d.ns.Remove(p.ScratchNS); err != nil {
		return err
	}
	if err := d.ns.Create(p.ScratchNS); err != nil {
		return fmt.Errorf("scratch netns: %w", err)
	}
	return nil
}

// add runs ADD as planned, records its result in att, hands the interface
// over to libnetwork where the plan says so, and returns Docker's answer.
func (d *Driver) add(ctx context.Context, nw *state.Network, plan translate.JoinPlan, att *state.Attachment) (*cnm.JoinResponse, error) {
	res, err := d.cni.Add(ctx, plan.Conflist, runtimeConf(att))
	if err == nil {
		err = translate.CheckAddresses(res, plan)
	}
	if err != nil {
		return nil, fmt.Errorf("cni ADD %s: %w", nw.CNINetwork, err)
	}
	// Kept in the list's own version: it is the prevResult of later
	// single-plugin runs (portmap), which parse only their versions.
	vres, err := res.GetAsVersion(plan.ListVersion)
	if err != nil {
		return nil, fmt.Errorf("cni ADD %s: result as version %s: %w", nw.CNINetwork, plan.ListVersion, err)
	}
	att.Result, _ = json.Marshal(vres)
	// From here on the interface may leave where ADD put it; DEL finds it
	// by MAC.
	att.MAC, att.OwnPortMap, att.SkipReclaim = plan.InterfaceMAC(res), plan.OwnPortMap, plan.SkipReclaim
	var lr translate.LinkRoutes
	if plan.HostIfName != "" {
		if lr, err = d.handOver(plan); err != nil {
			return nil, err
		}
	}
	return translate.JoinResponse(plan, res, lr)
}

// handOver moves the chain's interface to the host for libnetwork, reading
// first the routes the chain left on it (the move drops them; libnetwork
// sets them again from the Join answer): which subnets it reaches through
// the gateway, and its default routes' gateways.
func (d *Driver) handOver(plan translate.JoinPlan) (translate.LinkRoutes, error) {
	lr, err := d.ns.LinkRoutes(plan.NetNS, plan.IfName)
	if err != nil {
		return lr, err
	}
	if err := d.ns.DeleteHostLink(plan.HostIfName); err != nil {
		return lr, err
	}
	if err := d.ns.MoveToHost(plan.NetNS, plan.IfName, plan.HostIfName, d.linkAlias()); err != nil {
		return lr, err
	}
	return lr, nil
}

// rollbackJoin undoes a failed Join.
func (d *Driver) rollbackJoin(ctx context.Context, ep *state.Endpoint) {
	if err := d.detach(ctx, ep); err != nil {
		d.log.ErrorContext(ctx, "roll back failed join", "endpoint", translate.ShortID(ep.ID), "err", err)
	}
}

// publishAtJoin publishes a direct-mode join's ports where the plan says
// this network carries the container's default route; in handover and
// move mode Docker says so with ProgramExternalConnectivity.
func (d *Driver) publishAtJoin(ctx context.Context, ep *state.Endpoint, plan translate.JoinPlan, opts map[string]any) error {
	bindings, _ := translate.ParsePortBindings(opts)
	if len(bindings) == 0 || plan.Mode != translate.JoinDirect {
		return nil
	}
	if !plan.PublishAtJoin {
		d.log.InfoContext(ctx, "ports not published here: this network does not carry the container's default route", "endpoint", translate.ShortID(ep.ID))
		return nil
	}
	return d.publish(ctx, ep, bindings)
}
