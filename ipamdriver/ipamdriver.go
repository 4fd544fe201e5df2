// Package ipamdriver serves Docker's remote IPAM protocol on top of the pool
// authority (package pools): it decodes what Docker asks, hands it to the
// authority and encodes the answer. Every address is reserved in the CNI
// network's own IPAM store, so that any other runtime using the same
// conflist can never be given the same address.
//
// It holds no state of its own and does not configure interfaces; the
// network driver's Join does, with the address reserved here.
package ipamdriver

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/docker/go-plugins-helpers/ipam"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/pools"
)

// Driver is the IPAM driver.
type Driver struct {
	pools *pools.Authority
}

// New returns an IPAM driver over the pool authority.
func New(p *pools.Authority) *Driver {
	return &Driver{pools: p}
}

func (d *Driver) GetCapabilities(ctx context.Context, _ *struct{}) (*ipam.CapabilitiesResponse, error) {
	return &ipam.CapabilitiesResponse{RequiresMACAddress: false}, nil
}

func (d *Driver) GetDefaultAddressSpaces(ctx context.Context, _ *struct{}) (*ipam.AddressSpacesResponse, error) {
	return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: cnm.LocalSpace, GlobalDefaultAddressSpace: cnm.GlobalSpace}, nil
}

// RequestPool hands Docker a pool: see pools.Authority.Request.
func (d *Driver) RequestPool(ctx context.Context, req *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	p, err := d.pools.Request(ctx, pools.Request{
		AddressSpace: req.AddressSpace, Pool: req.Pool, SubPool: req.SubPool, V6: req.V6, Options: req.Options,
	})
	if err != nil {
		return nil, err
	}
	return &ipam.RequestPoolResponse{PoolID: p.ID, Pool: p.Subnet, Data: map[string]string{}}, nil
}

// ReleasePool forgets a pool, releasing any address Docker did not release.
func (d *Driver) ReleasePool(ctx context.Context, req *ipam.ReleasePoolRequest) (*struct{}, error) {
	if req.PoolID == "" {
		return nil, cnm.MissingID("release pool", "no pool ID in the request")
	}
	return nil, d.pools.ReleasePool(ctx, req.PoolID)
}

// RequestAddress answers the gateway request from the pool, and reserves
// every other address in the CNI network's IPAM store.
func (d *Driver) RequestAddress(ctx context.Context, req *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	if req.PoolID == "" {
		return nil, cnm.MissingID("request address", "no pool ID in the request")
	}
	var want netip.Addr
	if req.Address != "" {
		var err error
		if want, err = netip.ParseAddr(req.Address); err != nil {
			return nil, fmt.Errorf("address %q: %w", req.Address, err)
		}
	}
	var addr netip.Prefix
	var err error
	if req.Options[cnm.OptRequestAddressType] == cnm.RequestAddressTypeGateway {
		addr, err = d.pools.Gateway(ctx, req.PoolID, want)
	} else {
		addr, err = d.pools.Reserve(ctx, req.PoolID, want, req.Options[cnm.OptEndpointName])
	}
	if err != nil {
		return nil, err
	}
	return &ipam.RequestAddressResponse{Address: addr.String(), Data: map[string]string{}}, nil
}

// ReleaseAddress releases a reservation in the CNI IPAM store.
func (d *Driver) ReleaseAddress(ctx context.Context, req *ipam.ReleaseAddressRequest) (*struct{}, error) {
	if req.PoolID == "" || req.Address == "" {
		return nil, cnm.MissingID("release address", "the request names no pool or no address")
	}
	a, err := netip.ParseAddr(req.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", req.Address, err)
	}
	return nil, d.pools.Release(ctx, req.PoolID, a)
}
