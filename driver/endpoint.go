package driver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// CreateEndpoint records the endpoint and the addresses IPAM gave it.
func (d *Driver) CreateEndpoint(ctx context.Context, req *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	if req.NetworkID == "" || req.EndpointID == "" {
		return nil, cnm.MissingID("create endpoint", "the request names no network or no endpoint")
	}
	d.awaitRecord(ctx, d.hasNetwork(req.NetworkID), true)
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	resp, err := d.createEndpoint(req)
	if err != nil {
		return nil, fmt.Errorf("create endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	return resp, nil
}

func (d *Driver) createEndpoint(req *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	nw, err := d.network(req.NetworkID)
	if err != nil {
		return nil, fmt.Errorf("network %s: %w", translate.ShortID(req.NetworkID), err)
	}
	ep := &state.Endpoint{ID: req.EndpointID, NetworkID: req.NetworkID, Created: d.now()}
	if req.Interface != nil {
		for _, a := range []string{req.Interface.Address, req.Interface.AddressIPv6} {
			if a != "" {
				ep.Addresses = append(ep.Addresses, a)
			}
		}
		ep.MAC = req.Interface.MacAddress
	}
	if len(ep.Addresses) == 0 {
		return nil, errors.New("no address from IPAM")
	}
	if len(nw.PoolIDs) > 0 {
		if err := d.pools.CorrectClaims(nw, ep.Addresses); err != nil {
			return nil, err
		}
	}
	if err := d.fromReservations(nw, ep); err != nil {
		return nil, err
	}
	if _, err := translate.ParsePortBindings(req.Options); err != nil {
		return nil, err
	}
	if ep.IfName, err = translate.EndpointIfName(req.Options); err != nil {
		return nil, err
	}
	if raw, ok := req.Options[cnm.OptPortMap]; ok && raw != nil {
		ep.PortBindings, _ = json.Marshal(raw)
	}
	resp := &network.CreateEndpointResponse{}
	if pl, err := translate.ParseList(nw.Conflist); err == nil && ep.MAC == "" && (pl.HasCapability("mac") || (!nw.Bound && nw.JoinMode != string(translate.JoinDirect))) {
		// The chain, or (generated networks, which leave it out of the
		// chain) libnetwork as it takes the interface over, sets a MAC:
		// choose it now, so that docker inspect shows the one the
		// container gets.
		ep.MAC = newMAC()
		resp.Interface = &network.EndpointInterface{MacAddress: ep.MAC}
	}
	return resp, d.saveEndpoint(ep)
}

// DeleteEndpoint tears down the endpoint's attachment if Leave did not, and
// forgets it.
func (d *Driver) DeleteEndpoint(ctx context.Context, req *network.DeleteEndpointRequest) (*struct{}, error) {
	if req.EndpointID == "" {
		return nil, cnm.MissingID("delete endpoint", "no endpoint ID in the request")
	}
	d.awaitRecord(ctx, d.hasEndpoint(req.EndpointID), false)
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.existingEndpoint(req.EndpointID)
	if ep == nil && err == nil {
		d.deleted.add(req.EndpointID, d.now())
		err = d.detachUnknown(ctx, req.NetworkID, req.EndpointID)
	}
	if ep == nil || err != nil {
		return nil, err
	}
	if err := d.detach(withEndpoint(ctx, ep), ep); err != nil {
		return nil, fmt.Errorf("delete endpoint %s: %w", translate.ShortID(ep.ID), err)
	}
	if err := d.store.Update(func(tx *state.Tx) error { return tx.DeleteEndpoint(ep.ID) }); err != nil {
		return nil, fmt.Errorf("delete endpoint %s: forget it: %w", translate.ShortID(ep.ID), err)
	}
	d.deleted.add(ep.ID, d.now())
	return nil, nil
}

// EndpointOperInfo reports the endpoint's CNI attachment.
func (d *Driver) EndpointOperInfo(ctx context.Context, req *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error) {
	ep, err := d.endpoint(req.EndpointID)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	v := map[string]any{"cni.addresses": ep.Addresses}
	if a := ep.Attachment; a != nil {
		v["cni.mode"], v["cni.ifname"], v["cni.containerid"] = a.Mode, a.IfName, a.ContainerID
	}
	return &cnm.EndpointOperInfoResponse{Value: v}, nil
}

// RecordContainer notes which container an endpoint belongs to, as the
// engines report once it runs (Docker 20.10 tells the driver nothing), so
// that docker-cni ls can map container, endpoint and CNI attachment. It
// runs from the background watcher, never from a handler.
func (d *Driver) RecordContainer(endpointID, containerID, name string) {
	unlock := d.locks.lock(endpointID)
	defer unlock()
	ep, err := d.existingEndpoint(endpointID)
	if ep == nil || err != nil || (ep.Name == name && ep.ContainerID == containerID) {
		return
	}
	ep.Name, ep.ContainerID = name, containerID
	if err := d.saveEndpoint(ep); err != nil {
		d.log.Error("record endpoint's container", "endpoint", translate.ShortID(ep.ID), "err", err)
	}
}

// newMAC returns a random, locally administered, unicast MAC address.
func newMAC() string {
	b := make([]byte, 6)
	rand.Read(b)
	b[0] = b[0]&0xfc | 0x02
	return net.HardwareAddr(b).String()
}
