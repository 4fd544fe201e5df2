package engine

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Network is what an engine says of one of docker-cni's networks: enough to
// make its records again when docker-cni's state was lost.
type Network struct {
	// Host is the engine's address (--docker-host).
	Host string
	ID   string
	Name string
	// Driver is the network's driver, as the engine names it.
	Driver string
	// Options are the driver options (docker network create -o).
	Options              map[string]string
	Internal, EnableIPv6 bool
	// IPAMDriver is the network's IPAM driver; IPAMOptions its --ipam-opt.
	IPAMDriver  string
	IPAMOptions map[string]string
	IPAM        []network.IPAMConfig
	Endpoints   []Endpoint
}

// Endpoint is a running container's endpoint on a Network.
type Endpoint struct {
	ID          string
	ContainerID string
	Name        string
	MAC         string
	// Addresses are CIDRs, as the engine lists them.
	Addresses []string
	// SandboxKey is the container's netns path ("" if the engine did not
	// say).
	SandboxKey string
}

// inventoryTimeout bounds the questions to one engine.
const inventoryTimeout = 20 * time.Second

// Inventory lists, on every engine, the networks whose driver is one of
// drivers (or, with plugins set, a managed plugin running docker-cni), with
// their running containers' endpoints. An engine that does not answer is
// left out and named in the error; the networks of the others are
// returned. known endpoints (nil: none) are listed without asking for
// their container's sandbox.
func (e *Engines) Inventory(ctx context.Context, drivers []string, plugins bool, known func(endpointID string) bool) ([]Network, error) {
	var out []Network
	var errs []error
	for i, c := range e.clients {
		cctx, cancel := context.WithTimeout(ctx, inventoryTimeout)
		nws, err := inventoryOf(cctx, c, e.hosts[i], drivers, plugins, known)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("ask %s for its networks: %w", e.hosts[i], err))
			continue
		}
		out = append(out, nws...)
	}
	return out, errors.Join(errs...)
}

func inventoryOf(ctx context.Context, c *client.Client, host string, drivers []string, plugins bool, known func(string) bool) ([]Network, error) {
	if plugins {
		names, err := dockerCNIPlugins(ctx, c)
		if err != nil {
			return nil, err
		}
		drivers = append(slices.Clone(drivers), names...)
	}
	list, err := c.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return nil, err
	}
	var out []Network
	for _, s := range list {
		if !slices.Contains(drivers, s.Driver) {
			continue
		}
		nw, err := c.NetworkInspect(ctx, s.ID, network.InspectOptions{})
		if client.IsErrNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("network %.12s: %w", s.ID, err)
		}
		out = append(out, fromInspect(ctx, c, host, nw, known))
	}
	return out, nil
}

// fromInspect is a Network from the engine's inspect, with each container's
// sandbox asked for.
func fromInspect(ctx context.Context, c *client.Client, host string, nw network.Inspect, known func(string) bool) Network {
	n := Network{Host: host, ID: nw.ID, Name: nw.Name, Driver: nw.Driver, Options: nw.Options, Internal: nw.Internal, EnableIPv6: nw.EnableIPv6,
		IPAMDriver: nw.IPAM.Driver, IPAMOptions: nw.IPAM.Options, IPAM: nw.IPAM.Config}
	for cid, r := range nw.Containers {
		ep := Endpoint{ID: r.EndpointID, ContainerID: cid, Name: r.Name, MAC: r.MacAddress}
		for _, a := range []string{r.IPv4Address, r.IPv6Address} {
			if a != "" {
				ep.Addresses = append(ep.Addresses, a)
			}
		}
		if known != nil && known(r.EndpointID) {
			n.Endpoints = append(n.Endpoints, ep)
			continue
		}
		if info, err := c.ContainerInspect(ctx, cid); err == nil && info.NetworkSettings != nil {
			ep.SandboxKey = info.NetworkSettings.SandboxKey
		}
		n.Endpoints = append(n.Endpoints, ep)
	}
	slices.SortFunc(n.Endpoints, func(a, b Endpoint) int { return strings.Compare(a.ID, b.ID) })
	return n
}

// dockerCNIPlugins lists the names (with tag) of the engine's enabled
// managed plugins that run docker-cni: the driver names of a managed
// plugin's networks.
func dockerCNIPlugins(ctx context.Context, c *client.Client) ([]string, error) {
	ps, err := c.PluginList(ctx, filters.NewArgs(filters.Arg("enabled", "true")))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range ps {
		if p.Config.Entrypoint != nil && len(p.Config.Entrypoint) > 0 && path.Base(p.Config.Entrypoint[0]) == "docker-cni" {
			names = append(names, p.Name)
		}
	}
	return names, nil
}
