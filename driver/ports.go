package driver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// ProgramExternalConnectivity is called for the endpoint that carries the
// container's default route: its published ports are set up here (handover
// and move mode; direct-mode joins publish at Join, as Docker only calls
// this for an endpoint that returned a gateway).
func (d *Driver) ProgramExternalConnectivity(ctx context.Context, req *network.ProgramExternalConnectivityRequest) (*struct{}, error) {
	if req.EndpointID == "" {
		return nil, cnm.MissingID("program external connectivity", "no endpoint ID in the request")
	}
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	bindings, err := translate.ParsePortBindings(req.Options)
	if err != nil {
		return nil, err
	}
	if err := d.publish(ctx, ep, bindings); err != nil {
		return nil, fmt.Errorf("endpoint %s on network %s: %w", translate.ShortID(ep.ID), translate.ShortID(ep.NetworkID), err)
	}
	return nil, nil
}

// RevokeExternalConnectivity withdraws the endpoint's published ports.
func (d *Driver) RevokeExternalConnectivity(ctx context.Context, req *network.RevokeExternalConnectivityRequest) (*struct{}, error) {
	if req.EndpointID == "" {
		return nil, cnm.MissingID("revoke external connectivity", "no endpoint ID in the request")
	}
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.existingEndpoint(req.EndpointID)
	if ep == nil || err != nil {
		return nil, err
	}
	if err := d.unpublish(ctx, ep); err != nil {
		return nil, fmt.Errorf("endpoint %s on network %s: %w", translate.ShortID(ep.ID), translate.ShortID(ep.NetworkID), err)
	}
	return nil, nil
}

// publishedPorts lists the host ports docker-cni has published (an index,
// not a scan of the endpoints).
func (d *Driver) publishedPorts() (map[translate.PortKey]bool, error) {
	taken := map[translate.PortKey]bool{}
	err := d.store.View(func(tx *state.Tx) error {
		ports, err := tx.PublishedPorts()
		for hp := range ports {
			taken[translate.PortKey{Proto: hp.Proto, HostIP: hp.HostIP, Port: hp.Port}] = true
		}
		return err
	})
	return taken, err
}

// publish runs the chain's portmap plugin(s) on their own for the
// attachment, with host ports chosen where Docker left the choice to the
// driver, and records what was published. A failure leaves nothing
// published.
func (d *Driver) publish(ctx context.Context, ep *state.Endpoint, bindings []translate.PortBinding) error {
	att := ep.Attachment
	if len(bindings) == 0 || att == nil || len(att.Published) > 0 {
		return nil
	}
	d.pubMu.Lock()
	defer d.pubMu.Unlock()
	taken, err := d.publishedPorts()
	if err != nil {
		return err
	}
	mappings, err := translate.PlanPorts(bindings, taken, d.ns.HostPortFree)
	if err != nil {
		return fmt.Errorf("publish ports: %w", err)
	}
	plugins, err := portPlugins(att, mappings)
	if err != nil {
		return err
	}
	args := cnirun.PluginArgs{ContainerID: att.ContainerID, IfName: att.IfName, NetNS: att.NetNS}
	for i, p := range plugins {
		if _, err := d.cni.PluginAdd(ctx, p.Type, p.Conf, args); err != nil {
			for _, done := range plugins[:i+1] {
				d.cni.PluginDel(ctx, done.Type, done.Conf, args)
			}
			return fmt.Errorf("publish ports %v: cni ADD %s: %w", mappings, p.Type, err)
		}
	}
	att.Published, _ = json.Marshal(mappings)
	if err := d.saveEndpoint(ep); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "ports published", "endpoint", translate.ShortID(ep.ID), "ports", fmt.Sprint(mappings))
	return nil
}

// portPlugins are the chain's portmap plugin configurations for an
// attachment and its mappings.
func portPlugins(att *state.Attachment, mappings []translate.PortMapping) ([]translate.PortMapPlugin, error) {
	pl, err := translate.ParseList(att.Conflist)
	if err != nil {
		return nil, err
	}
	return pl.PortMapPlugins(att.Result, mappings, att.OwnPortMap)
}

// unpublish runs DEL of the portmap plugin(s) with what publish recorded.
func (d *Driver) unpublish(ctx context.Context, ep *state.Endpoint) error {
	att := ep.Attachment
	if att == nil || len(att.Published) == 0 {
		return nil
	}
	var mappings []translate.PortMapping
	if err := json.Unmarshal(att.Published, &mappings); err != nil {
		return fmt.Errorf("published ports record: %w", err)
	}
	plugins, err := portPlugins(att, mappings)
	if err != nil {
		return err
	}
	args := cnirun.PluginArgs{ContainerID: att.ContainerID, IfName: att.IfName}
	for _, p := range plugins {
		if err := d.cni.PluginDel(ctx, p.Type, p.Conf, args); err != nil {
			return fmt.Errorf("withdraw ports %v: cni DEL %s: %w", mappings, p.Type, err)
		}
	}
	att.Published = nil
	if err := d.saveEndpoint(ep); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "ports withdrawn", "endpoint", translate.ShortID(ep.ID), "ports", fmt.Sprint(mappings))
	return nil
}
