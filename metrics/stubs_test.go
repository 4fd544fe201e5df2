package metrics_test

import (
	"context"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/server"
)

var (
	_ server.NetworkDriver = stubNet{}
	_ server.IPAMDriver    = stubIPAM{}
)

// stubNet and stubIPAM answer every call with nothing.
type stubNet struct{}

func (stubNet) GetCapabilities(context.Context, *struct{}) (*network.CapabilitiesResponse, error) {
	return nil, nil
}
func (stubNet) CreateNetwork(context.Context, *network.CreateNetworkRequest) (*struct{}, error) {
	return nil, nil
}
func (stubNet) AllocateNetwork(context.Context, *network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return nil, nil
}
func (stubNet) DeleteNetwork(context.Context, *network.DeleteNetworkRequest) (*struct{}, error) {
	return nil, nil
}
func (stubNet) FreeNetwork(context.Context, *network.FreeNetworkRequest) (*struct{}, error) {
	return nil, nil
}
func (stubNet) CreateEndpoint(context.Context, *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	return nil, nil
}
func (stubNet) DeleteEndpoint(context.Context, *network.DeleteEndpointRequest) (*struct{}, error) {
	return nil, nil
}
func (stubNet) EndpointOperInfo(context.Context, *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error) {
	return nil, nil
}
func (stubNet) Join(context.Context, *network.JoinRequest) (*cnm.JoinResponse, error) {
	return nil, nil
}
func (stubNet) Leave(context.Context, *network.LeaveRequest) (*struct{}, error) { return nil, nil }
func (stubNet) DiscoverNew(context.Context, *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}
func (stubNet) DiscoverDelete(context.Context, *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}
func (stubNet) ProgramExternalConnectivity(context.Context, *network.ProgramExternalConnectivityRequest) (*struct{}, error) {
	return nil, nil
}
func (stubNet) RevokeExternalConnectivity(context.Context, *network.RevokeExternalConnectivityRequest) (*struct{}, error) {
	return nil, nil
}

type stubIPAM struct{}

func (stubIPAM) GetCapabilities(context.Context, *struct{}) (*ipam.CapabilitiesResponse, error) {
	return nil, nil
}
func (stubIPAM) GetDefaultAddressSpaces(context.Context, *struct{}) (*ipam.AddressSpacesResponse, error) {
	return nil, nil
}
func (stubIPAM) RequestPool(context.Context, *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	return nil, nil
}
func (stubIPAM) ReleasePool(context.Context, *ipam.ReleasePoolRequest) (*struct{}, error) {
	return nil, nil
}
func (stubIPAM) RequestAddress(context.Context, *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	return nil, nil
}
func (stubIPAM) ReleaseAddress(context.Context, *ipam.ReleaseAddressRequest) (*struct{}, error) {
	return nil, nil
}
