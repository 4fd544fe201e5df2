// Package driver serves Docker's remote network driver protocol. Join runs
// the network's CNI chain (ADD) so the container gets an interface made by
// the real plugins; Leave and DeleteEndpoint run DEL with exactly the
// configuration and runtime conf ADD used.
//
// Handlers follow one shape: load state, translate, run CNI, persist, and
// roll back what they made when a step fails. It never calls the Docker API
// from a handler (dockerd may hold the container's lock while it calls us).
package driver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Namespaces is what the driver needs to do to network namespaces itself;
// package sandbox implements it.
type Namespaces interface {
	IsNetNS(path string) bool
	Create(path string) error
	Remove(path string) error
	LinkNames(nsPath string) ([]string, error)
	MoveToHost(nsPath, ifName, newName string) error
	DeleteHostLink(name string) error
	HostLinkExists(name string) bool
	Reclaim(fromNS, mac, toNS, newName string, addrs []netip.Prefix) (bool, error)
	DefaultRoutes(nsPath string) (v4, v6 bool, err error)
	// HostPortFree reports whether a host port can be bound.
	HostPortFree(translate.PortKey) bool
}

// hostNetNS is the daemon's own netns, where libnetwork leaves an interface
// it moved back out of a sandbox.
const hostNetNS = "/proc/self/ns/net"

// Config holds the facts the driver needs about the machine.
type Config struct {
	ConfDir string
	// ScratchDir holds the scratch netns of move-mode joins.
	ScratchDir string
	// DataDir is host-local's store for generated networks (it must equal
	// the IPAM driver's).
	DataDir string
	// K8sNamespace is the K8S_POD_NAMESPACE of containers without the
	// io.kubernetes.pod.namespace label.
	K8sNamespace string
	// DockerUserRules, when set, makes docker-cni accept traffic of bound
	// networks without a firewall plugin in dockerd's DOCKER-USER chain.
	DockerUserRules bool
}

// Containers finds what the engines said of a container, without calling
// them; package engine's Watch implements it.
type Containers interface {
	Lookup(name string) (engine.Container, bool)
}

// Firewall keeps the host rules docker-cni owns; package hostfw implements it.
type Firewall interface {
	Ensure(ctx context.Context, chain string, rules []translate.AcceptRule) (bool, error)
	Remove(ctx context.Context, chain string, rules []translate.AcceptRule) error
}

// Driver is the network driver.
type Driver struct {
	cfg   Config
	store *state.Store
	cni   cnirun.Runner
	ns    Namespaces
	fw    Firewall
	ctrs  Containers
	log   *slog.Logger
	now   func() time.Time
	locks keyedMutex
	// pubMu serialises host port choice across endpoints.
	pubMu sync.Mutex
}

// New returns a network driver.
func New(cfg Config, store *state.Store, cni cnirun.Runner, ns Namespaces, fw Firewall, log *slog.Logger) *Driver {
	return &Driver{cfg: cfg, store: store, cni: cni, ns: ns, fw: fw, log: log, now: time.Now}
}

// SetContainers gives the driver the engines' container cache.
func (d *Driver) SetContainers(c Containers) { d.ctrs = c }

// keyedMutex serialises work on one key (a network or endpoint ID).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}

func (d *Driver) GetCapabilities(ctx context.Context, _ *struct{}) (*network.CapabilitiesResponse, error) {
	return &network.CapabilitiesResponse{Scope: network.LocalScope, ConnectivityScope: network.LocalScope}, nil
}

// claimPools finds, for each pool Docker names in CreateNetwork, the
// docker-cni pool not yet claimed by a network: the oldest, if several
// (Docker creates networks in the order it requested their pools). The
// request carries no pool ID, so a claim can still be wrong when creates
// interleave; Reconcile therefore never releases a pool that holds
// addresses on the strength of its claim alone.
func (d *Driver) claimPools(data []*network.IPAMData) ([]*state.Pool, error) {
	pools, err := d.store.Pools.List()
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	var out []*state.Pool
	for _, dd := range data {
		var best *state.Pool
		for _, p := range pools {
			if p.Subnet == dd.Pool && p.NetworkID == "" && (best == nil || p.Created.Before(best.Created)) {
				best = p
			}
		}
		if best == nil {
			return nil, fmt.Errorf("no unclaimed docker-cni pool for %s: was it requested from this daemon?", dd.Pool)
		}
		out = append(out, best)
	}
	return out, nil
}

// CreateNetwork binds the network to a CNI conflist (bound) or generates one.
func (d *Driver) CreateNetwork(ctx context.Context, req *network.CreateNetworkRequest) (*struct{}, error) {
	unlock := d.locks.lock(req.NetworkID)
	defer unlock()
	nw, err := d.createNetwork(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create network %s: %w", translate.ShortID(req.NetworkID), err)
	}
	d.log.InfoContext(ctx, "network created", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork, "bound", nw.Bound, "bridge", nw.BridgeName)
	return nil, nil
}

func (d *Driver) createNetwork(ctx context.Context, req *network.CreateNetworkRequest) (*state.Network, error) {
	opts, err := translate.ParseNetworkOptions(req.Options)
	if err != nil {
		return nil, err
	}
	data := append(append([]*network.IPAMData{}, req.IPv4Data...), req.IPv6Data...)
	ours, dockerIPAM := 0, 0
	for _, dd := range data {
		if dd.AddressSpace == ipamdriver.LocalSpace || dd.AddressSpace == ipamdriver.GlobalSpace {
			ours++
		} else {
			dockerIPAM++
		}
	}
	if ours > 0 && dockerIPAM > 0 {
		return nil, errors.New("the IPv4 and IPv6 pools must both come from the cni IPAM driver")
	}
	var pools []*state.Pool
	poolBinding := ""
	if ours > 0 {
		if pools, err = d.claimPools(data); err != nil {
			return nil, err
		}
		for i, p := range pools {
			b := ""
			if p.Bound {
				b = p.CNINetwork
			}
			if i > 0 && b != poolBinding {
				return nil, fmt.Errorf("pools %s and %s come from different CNI networks", pools[0].ID, p.ID)
			}
			poolBinding = b
		}
	}
	binding, err := translate.CheckBinding(poolBinding, opts.CNINetwork, dockerIPAM > 0)
	if err != nil {
		return nil, err
	}
	nw := &state.Network{ID: req.NetworkID, Internal: opts.Internal, JoinMode: string(opts.Join), DockerIPAM: dockerIPAM > 0, Created: d.now()}
	for _, p := range pools {
		nw.PoolIDs = append(nw.PoolIDs, p.ID)
		nw.Gateways = append(nw.Gateways, p.Gateway)
	}
	if binding != "" {
		if err := d.bind(nw, binding, opts); err != nil {
			return nil, err
		}
	} else if err := d.generate(nw, req, pools, opts); err != nil {
		return nil, err
	}
	if err := d.validate(ctx, nw); err != nil {
		var ve *cnirun.VersionError
		if opts.CNIVersion != "" && !nw.Bound && errors.As(err, &ve) {
			return nil, fmt.Errorf("-o %s=%s cannot run the generated chain: %w", translate.OptVersion, opts.CNIVersion, err)
		}
		return nil, err
	}
	if err := d.ensureForwarding(ctx, nw); err != nil {
		return nil, err
	}
	if err := d.store.Networks.Put(nw.ID, nw); err != nil {
		d.removeForwarding(ctx, nw)
		return nil, fmt.Errorf("save: %w", err)
	}
	for _, p := range pools {
		p.NetworkID = nw.ID
		if err := d.store.Pools.Put(p.ID, p); err != nil {
			return nil, fmt.Errorf("save pool %s: %w", p.ID, err)
		}
	}
	return nw, nil
}

func (d *Driver) bind(nw *state.Network, name string, opts translate.NetworkOptions) error {
	switch {
	case opts.BridgeName != "":
		return fmt.Errorf("-o %s cannot be used with %s=%s: the conflist names its bridge", cnm.OptBridgeName, translate.OptNetwork, name)
	case opts.MTU != 0:
		return fmt.Errorf("-o %s cannot be used with %s=%s: the conflist sets the MTU", cnm.OptMTU, translate.OptNetwork, name)
	case opts.Internal:
		return fmt.Errorf("--internal cannot be used with %s=%s: the conflist decides routes and masquerading", translate.OptNetwork, name)
	}
	f, err := cniconf.Find(d.cfg.ConfDir, name)
	if err != nil {
		return err
	}
	pl, err := translate.ParseList(f.Bytes)
	if err != nil {
		return fmt.Errorf("CNI network %q (%s): %w", name, f.Path, err)
	}
	if opts.CNIVersion != "" && opts.CNIVersion != pl.CNIVersion {
		return fmt.Errorf("-o %s=%s disagrees with CNI network %q (cniVersion %s in %s): give %s or leave the option out",
			translate.OptVersion, opts.CNIVersion, name, pl.CNIVersion, f.Path, pl.CNIVersion)
	}
	nw.CNINetwork, nw.Bound, nw.ConfFile, nw.CNIVersion, nw.Conflist = name, true, f.Path, pl.CNIVersion, f.Bytes
	nw.VersionOption = opts.CNIVersion
	return nil
}

func (d *Driver) generate(nw *state.Network, req *network.CreateNetworkRequest, pools []*state.Pool, opts translate.NetworkOptions) error {
	data := append(append([]*network.IPAMData{}, req.IPv4Data...), req.IPv6Data...)
	if len(data) == 0 {
		return errors.New("no address pool: docker-cni networks need IPAM")
	}
	var tps []translate.Pool
	for i, dd := range data {
		subnet, err := netip.ParsePrefix(dd.Pool)
		if err != nil {
			return fmt.Errorf("pool %q: %w", dd.Pool, err)
		}
		tp := translate.Pool{Subnet: subnet.Masked()}
		if dd.Gateway != "" {
			gw, err := netip.ParsePrefix(dd.Gateway)
			if err != nil {
				return fmt.Errorf("gateway %q: %w", dd.Gateway, err)
			}
			tp.Gateway = gw.Addr()
		}
		if i < len(pools) && pools[i].Range != "" {
			tp.Range, _ = netip.ParsePrefix(pools[i].Range)
		}
		tps = append(tps, tp)
	}
	if nw.DockerIPAM {
		nw.Gateways = nil
		for _, tp := range tps {
			nw.Gateways = append(nw.Gateways, tp.Gateway.String())
		}
	}
	name := translate.GeneratedName(tps[0].Subnet)
	if len(pools) > 0 {
		name = pools[0].CNINetwork
	}
	bridge := opts.BridgeName
	if bridge == "" {
		bridge = translate.GeneratedBridgeName(nw.ID)
	}
	others, err := d.store.Networks.List()
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.BridgeName == bridge && o.ID != nw.ID {
			return fmt.Errorf("bridge %s is already used by network %s", bridge, translate.ShortID(o.ID))
		}
	}
	list, err := translate.GenerateConflist(translate.GenerateParams{
		Name: name, CNIVersion: opts.CNIVersion, BridgeName: bridge, MTU: opts.MTU, Internal: opts.Internal, Pools: tps, DataDir: d.cfg.DataDir,
	})
	if err != nil {
		return err
	}
	version := opts.CNIVersion
	if version == "" {
		version = translate.DefaultCNIVersion
	}
	nw.CNINetwork, nw.CNIVersion, nw.Conflist, nw.BridgeName = name, version, list, bridge
	nw.VersionOption = opts.CNIVersion
	// A bridge that exists already (docker0, a conflist's cni0) is used but
	// never deleted, as Docker's bridge driver does.
	nw.OwnsBridge = !d.ns.HostLinkExists(bridge)
	return nil
}

// validate checks that every plugin the network's joins will run exists
// and supports the conflist's CNI version.
func (d *Driver) validate(ctx context.Context, nw *state.Network) error {
	pl, err := translate.ParseList(nw.Conflist)
	if err != nil {
		return err
	}
	var probe []translate.StaticAddress
	for _, g := range nw.Gateways {
		if a, err := netip.ParseAddr(g); err == nil {
			probe = append(probe, translate.StaticAddress{Address: netip.PrefixFrom(a, a.BitLen())})
		}
	}
	list, err := pl.WithStaticIPAM(probe)
	if err != nil {
		return err
	}
	if err := d.cni.Validate(ctx, list); err != nil {
		return fmt.Errorf("CNI network %q: %w", nw.CNINetwork, err)
	}
	return nil
}

// DeleteNetwork forgets a network, tearing down endpoints Docker did not
// delete and the bridge of a generated network.
func (d *Driver) DeleteNetwork(ctx context.Context, req *network.DeleteNetworkRequest) (*struct{}, error) {
	unlock := d.locks.lock(req.NetworkID)
	defer unlock()
	nw, err := d.store.Networks.Get(req.NetworkID)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	eps, err := d.store.Endpoints.List()
	if err != nil {
		return nil, err
	}
	for _, ep := range eps {
		if ep.NetworkID != nw.ID {
			continue
		}
		d.log.WarnContext(ctx, "deleting stale endpoint with its network", "network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID))
		if _, err := d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: nw.ID, EndpointID: ep.ID}); err != nil {
			return nil, fmt.Errorf("delete network %s: %w", translate.ShortID(nw.ID), err)
		}
	}
	d.removeForwarding(ctx, nw)
	if nw.BridgeName != "" && nw.OwnsBridge {
		if err := d.ns.DeleteHostLink(nw.BridgeName); err != nil {
			return nil, fmt.Errorf("delete network %s: %w", translate.ShortID(nw.ID), err)
		}
	}
	if err := d.store.Networks.Delete(nw.ID); err != nil {
		return nil, err
	}
	d.log.InfoContext(ctx, "network deleted", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
	return nil, nil
}

// AllocateNetwork is a swarm (global scope) call.
func (d *Driver) AllocateNetwork(ctx context.Context, req *network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return nil, errors.New("not supported: the cni driver is local scope; swarm networks cannot use it")
}

// FreeNetwork is a swarm (global scope) call.
func (d *Driver) FreeNetwork(ctx context.Context, req *network.FreeNetworkRequest) (*struct{}, error) {
	return nil, errors.New("not supported: the cni driver is local scope; swarm networks cannot use it")
}

// CreateEndpoint records the endpoint and the addresses IPAM gave it.
func (d *Driver) CreateEndpoint(ctx context.Context, req *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	nw, err := d.store.Networks.Get(req.NetworkID)
	if err != nil {
		return nil, fmt.Errorf("create endpoint %s: network %s: %w", translate.ShortID(req.EndpointID), translate.ShortID(req.NetworkID), err)
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
		return nil, fmt.Errorf("create endpoint %s: no address from IPAM", translate.ShortID(req.EndpointID))
	}
	if err := d.correctClaims(nw, ep.Addresses); err != nil {
		return nil, fmt.Errorf("create endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	ep.Name = d.reservedName(nw, ep.Addresses)
	resp := &network.CreateEndpointResponse{}
	if pl, err := translate.ParseList(nw.Conflist); err == nil && ep.MAC == "" && pl.HasCapability("mac") {
		// The chain can set a MAC: choose it now, so that docker inspect
		// shows the one the container gets.
		ep.MAC = newMAC()
		resp.Interface = &network.EndpointInterface{MacAddress: ep.MAC}
	}
	if _, err := translate.ParsePortBindings(req.Options); err != nil {
		return nil, fmt.Errorf("create endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	if ep.IfName, err = translate.EndpointIfName(req.Options); err != nil {
		return nil, fmt.Errorf("create endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	if raw, ok := req.Options[cnm.OptPortMap]; ok && raw != nil {
		ep.PortBindings, _ = json.Marshal(raw)
	}
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		return nil, fmt.Errorf("create endpoint %s: save: %w", translate.ShortID(ep.ID), err)
	}
	return resp, nil
}

// DeleteEndpoint tears down the endpoint's attachment if Leave did not, and
// forgets it.
func (d *Driver) DeleteEndpoint(ctx context.Context, req *network.DeleteEndpointRequest) (*struct{}, error) {
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.existingEndpoint(req.EndpointID)
	if ep == nil || err != nil {
		return nil, err
	}
	if err := d.detach(ctx, ep); err != nil {
		return nil, fmt.Errorf("delete endpoint %s: %w", translate.ShortID(ep.ID), err)
	}
	if err := d.store.Endpoints.Delete(ep.ID); err != nil {
		return nil, err
	}
	return nil, nil
}

// EndpointOperInfo reports the endpoint's CNI attachment.
func (d *Driver) EndpointOperInfo(ctx context.Context, req *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error) {
	ep, err := d.store.Endpoints.Get(req.EndpointID)
	if err != nil {
		return nil, fmt.Errorf("endpoint %s: %w", translate.ShortID(req.EndpointID), err)
	}
	v := map[string]any{"cni.addresses": ep.Addresses}
	if a := ep.Attachment; a != nil {
		v["cni.mode"], v["cni.ifname"], v["cni.containerid"] = a.Mode, a.IfName, a.ContainerID
	}
	return &cnm.EndpointOperInfoResponse{Value: v}, nil
}

// Join runs the network's CNI chain for the endpoint. When the sandbox netns
// already exists (Docker Engine >= 28) the chain runs straight into it, and
// the interface is handed to libnetwork under the same name (handover) or,
// with -o cni.join=direct, left there; otherwise the chain runs in a scratch
// netns and the interface is handed to libnetwork to move (move).
func (d *Driver) Join(ctx context.Context, req *network.JoinRequest) (*cnm.JoinResponse, error) {
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	resp, err := d.join(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("join endpoint %s on network %s: %w", translate.ShortID(req.EndpointID), translate.ShortID(req.NetworkID), err)
	}
	return resp, nil
}

func (d *Driver) join(ctx context.Context, req *network.JoinRequest) (_ *cnm.JoinResponse, retErr error) {
	nw, err := d.store.Networks.Get(req.NetworkID)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	ep, err := d.store.Endpoints.Get(req.EndpointID)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	if ep.Attachment != nil {
		// A repeated Join (Docker retries on transport errors): start over.
		if err := d.detach(ctx, ep); err != nil {
			return nil, err
		}
	}
	d.refreshBinding(ctx, nw)
	pl, err := translate.ParseList(nw.Conflist)
	if err != nil {
		return nil, err
	}
	addrs, err := staticAddresses(ep.Addresses, nw.Gateways)
	if err != nil {
		return nil, err
	}
	list, err := pl.WithStaticIPAM(addrs)
	if err != nil {
		return nil, err
	}
	args, err := translate.CNIArgs(d.identity(ctx, ep), ep.ID, d.cfg.K8sNamespace)
	if err != nil {
		return nil, err
	}
	att := &state.Attachment{SandboxKey: req.SandboxKey, ContainerID: ep.ID, Conflist: list, Args: args, Added: d.now()}
	carriesDefault, strip4, strip6 := false, false, false
	scratch := filepath.Join(d.cfg.ScratchDir, translate.ShortID(ep.ID))
	if d.ns.IsNetNS(req.SandboxKey) {
		names, err := d.ns.LinkNames(req.SandboxKey)
		if err != nil {
			return nil, err
		}
		att.Mode, att.NetNS, att.IfName = string(translate.JoinHandover), req.SandboxKey, translate.NextIfName(names)
		if ep.IfName != "" {
			if slices.Contains(names, ep.IfName) {
				return nil, fmt.Errorf("%s=%s: the container already has an interface of that name", cnm.OptIfname, ep.IfName)
			}
			att.IfName = ep.IfName
		}
		if nw.JoinMode == string(translate.JoinDirect) {
			att.Mode = string(translate.JoinDirect)
		} else {
			// DEL runs in a scratch netns, made when needed: the
			// interface may be in the host by then (libnetwork moves it
			// out at Leave) or the sandbox gone.
			att.ScratchNS, att.HostIfName = scratch, translate.HostIfName(ep.ID)
		}
		// The chain must not add a second default route (plugins fail
		// on the one there); in handover mode libnetwork sets the
		// default route itself, from the gateway Join returns.
		if strip4, strip6, err = d.ns.DefaultRoutes(req.SandboxKey); err != nil {
			return nil, err
		}
		carriesDefault = !strip4 && !nw.Internal && pl.HasDefaultRoute(false)
		if list, err = translate.WithoutDefaultRoutes(list, strip4, strip6); err != nil {
			return nil, err
		}
		att.Conflist = list
	} else {
		if nw.JoinMode == string(translate.JoinDirect) {
			return nil, fmt.Errorf("-o %s=%s: this engine makes the container's netns after Join (Docker 20.10 and older), "+
				"so the chain cannot run in it; recreate the network without the option", translate.OptJoin, translate.JoinDirect)
		}
		if ep.IfName != "" {
			return nil, fmt.Errorf("%s=%s: this engine names the container's interfaces itself (Docker 20.10 and older)", cnm.OptIfname, ep.IfName)
		}
		if err := d.ns.Remove(scratch); err != nil {
			return nil, err
		}
		if err := d.ns.Create(scratch); err != nil {
			return nil, fmt.Errorf("scratch netns: %w", err)
		}
		att.Mode, att.NetNS, att.ScratchNS, att.IfName = string(translate.JoinMove), scratch, scratch, "eth0"
		att.HostIfName = translate.HostIfName(ep.ID)
	}
	if ep.MAC != "" {
		switch {
		case pl.HasCapability("mac"):
			att.Capability = map[string]any{"mac": ep.MAC}
		case att.Mode == string(translate.JoinDirect):
			d.ns.Remove(att.ScratchNS)
			return nil, fmt.Errorf("--mac-address %s: CNI network %q has no plugin with the \"mac\" capability (e.g. tuning) to set it", ep.MAC, nw.CNINetwork)
		}
	}
	// Record the attachment before ADD: if the daemon dies mid-ADD, DEL
	// still knows what to undo.
	ep.Attachment = att
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		d.ns.Remove(att.ScratchNS)
		return nil, fmt.Errorf("save: %w", err)
	}
	defer func() {
		if retErr != nil {
			if err := d.detach(ctx, ep); err != nil {
				d.log.ErrorContext(ctx, "roll back failed join", "endpoint", translate.ShortID(ep.ID), "err", err)
			}
		}
	}()
	log := d.log.With("network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID), "cni_network", nw.CNINetwork, "mode", att.Mode, "ifname", att.IfName)
	res, err := d.cni.Add(ctx, list, runtimeConf(att))
	if err != nil {
		return nil, fmt.Errorf("cni ADD %s: %w", nw.CNINetwork, err)
	}
	if err := checkAddresses(res, att.IfName, addrs); err != nil {
		return nil, fmt.Errorf("cni ADD %s: %w", nw.CNINetwork, err)
	}
	// Kept in the list's own version: it is the prevResult of later
	// single-plugin runs (portmap), which parse only their versions.
	vres, err := res.GetAsVersion(pl.CNIVersion)
	if err != nil {
		return nil, fmt.Errorf("cni ADD %s: result as version %s: %w", nw.CNINetwork, pl.CNIVersion, err)
	}
	att.Result, _ = json.Marshal(vres)
	// From here on the interface may leave where ADD put it; DEL finds it
	// by MAC.
	for _, iface := range res.Interfaces {
		if iface.Name == att.IfName && iface.Sandbox != "" {
			att.MAC = iface.Mac
		}
	}
	resp := translate.DirectJoinResponse()
	if att.Mode != string(translate.JoinDirect) {
		if err := d.ns.DeleteHostLink(att.HostIfName); err != nil {
			return nil, err
		}
		if err := d.ns.MoveToHost(att.NetNS, att.IfName, att.HostIfName); err != nil {
			return nil, err
		}
		if resp, err = translate.MoveJoinResponse(res, att.IfName, att.HostIfName, nw.Internal); err != nil {
			return nil, err
		}
	}
	if att.Mode == string(translate.JoinHandover) {
		// Back under the name the chain gave it, so DEL finds it, and
		// in libnetwork's list, so its own drivers name theirs after it.
		resp.InterfaceName.DstName = att.IfName
		// A default route dropped above (the sandbox had one) is still
		// this network's to offer: Docker picks the container's gateway.
		gw4, gw6 := translate.ResultGateways(res, att.IfName)
		if strip4 && !nw.Internal && pl.HasDefaultRoute(false) && resp.Gateway == "" {
			resp.Gateway = gw4
		}
		if strip6 && !nw.Internal && pl.HasDefaultRoute(true) && resp.GatewayIPv6 == "" {
			resp.GatewayIPv6 = gw6
		}
	}
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	// Ports are published on the one network that carries the container's
	// default route. In direct mode that is known now; in move mode Docker
	// says so with ProgramExternalConnectivity.
	if bindings, _ := translate.ParsePortBindings(req.Options); len(bindings) > 0 && att.Mode == string(translate.JoinDirect) {
		if !carriesDefault {
			log.InfoContext(ctx, "ports not published here: this network does not carry the container's default route")
		} else if err := d.publish(ctx, ep, bindings); err != nil {
			return nil, err
		}
	}
	log.InfoContext(ctx, "joined", "sandbox", req.SandboxKey, "addresses", ep.Addresses)
	return resp, nil
}

func staticAddresses(cidrs, gateways []string) ([]translate.StaticAddress, error) {
	var out []translate.StaticAddress
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("endpoint address %q: %w", c, err)
		}
		sa := translate.StaticAddress{Address: p}
		for _, g := range gateways {
			if gw, err := netip.ParseAddr(g); err == nil && gw.Is4() == p.Addr().Is4() && p.Masked().Contains(gw) {
				sa.Gateway = gw
			}
		}
		out = append(out, sa)
	}
	return out, nil
}

// checkAddresses makes sure the container got exactly the addresses Docker
// recorded, so that docker inspect tells the truth.
func checkAddresses(res *current.Result, ifName string, want []translate.StaticAddress) error {
	got := map[netip.Addr]bool{}
	for _, ipc := range res.IPs {
		if a, ok := netip.AddrFromSlice(ipc.Address.IP); ok {
			got[a.Unmap()] = true
		}
	}
	for _, w := range want {
		if !got[w.Address.Addr()] {
			return fmt.Errorf("the chain did not configure %s on %s (result: %v)", w.Address, ifName, res.IPs)
		}
	}
	return nil
}

// Leave runs CNI DEL for the endpoint's attachment.
func (d *Driver) Leave(ctx context.Context, req *network.LeaveRequest) (*struct{}, error) {
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.existingEndpoint(req.EndpointID)
	if ep == nil || err != nil {
		return nil, err
	}
	if err := d.detach(ctx, ep); err != nil {
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
		// libnetwork may have moved a move-mode interface back to the host
		// after Leave; it is ours to remove.
		return d.ns.DeleteHostLink(translate.HostIfName(ep.ID))
	}
	if err := d.unpublish(ctx, ep); err != nil {
		return err
	}
	rt := runtimeConf(att)
	switch {
	case att.Mode == string(translate.JoinHandover) && att.MAC == "":
		// The interface never left where ADD put it (ADD or its checks
		// failed): DEL runs there.
		if !d.ns.IsNetNS(rt.NetNS) {
			rt.NetNS = ""
		}
	case att.Mode != string(translate.JoinDirect):
		if err := d.reclaim(ctx, ep, att); err != nil {
			return err
		}
		rt.NetNS = att.ScratchNS
	case !d.ns.IsNetNS(rt.NetNS):
		rt.NetNS = ""
	}
	if err := d.cni.Del(ctx, att.Conflist, rt); err != nil {
		return fmt.Errorf("cni DEL: %w", err)
	}
	if err := d.ns.DeleteHostLink(att.HostIfName); err != nil {
		return err
	}
	if err := d.ns.Remove(att.ScratchNS); err != nil {
		return err
	}
	ep.Attachment = nil
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	d.log.InfoContext(ctx, "detached", "endpoint", translate.ShortID(ep.ID), "mode", att.Mode, "ifname", att.IfName)
	return nil
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

// DiscoverNew is a cluster discovery notification; local-scope networks
// need none.
func (d *Driver) DiscoverNew(ctx context.Context, _ *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}

// DiscoverDelete is a cluster discovery notification; local-scope networks
// need none.
func (d *Driver) DiscoverDelete(ctx context.Context, _ *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}

// ProgramExternalConnectivity is called for the endpoint that carries the
// container's default route: its published ports are set up here (handover
// and move mode; direct-mode joins publish at Join, as Docker only calls
// this for an endpoint that returned a gateway).
func (d *Driver) ProgramExternalConnectivity(ctx context.Context, req *network.ProgramExternalConnectivityRequest) (*struct{}, error) {
	unlock := d.locks.lock(req.EndpointID)
	defer unlock()
	ep, err := d.store.Endpoints.Get(req.EndpointID)
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

// publishedPorts lists the host ports docker-cni has published.
func (d *Driver) publishedPorts() (map[translate.PortKey]bool, error) {
	eps, err := d.store.Endpoints.List()
	if err != nil {
		return nil, err
	}
	taken := map[translate.PortKey]bool{}
	for _, ep := range eps {
		if ep.Attachment == nil || len(ep.Attachment.Published) == 0 {
			continue
		}
		var ms []translate.PortMapping
		if err := json.Unmarshal(ep.Attachment.Published, &ms); err != nil {
			continue
		}
		for _, m := range ms {
			taken[translate.PortKey{Proto: m.Protocol, HostIP: m.HostIP, Port: m.HostPort}] = true
		}
	}
	return taken, nil
}

// publish runs the chain's portmap plugin(s) on their own for the
// attachment, with host ports chosen where Docker left the choice to the
// driver, and records what was published. A failure leaves nothing
// published.
func (d *Driver) publish(ctx context.Context, ep *state.Endpoint, bindings []translate.PortBinding) (retErr error) {
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
	pl, err := translate.ParseList(att.Conflist)
	if err != nil {
		return err
	}
	plugins, err := pl.PortMapPlugins(att.Result, mappings)
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
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	d.log.InfoContext(ctx, "ports published", "endpoint", translate.ShortID(ep.ID), "ports", fmt.Sprint(mappings))
	return nil
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
	pl, err := translate.ParseList(att.Conflist)
	if err != nil {
		return err
	}
	plugins, err := pl.PortMapPlugins(att.Result, mappings)
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
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	d.log.InfoContext(ctx, "ports withdrawn", "endpoint", translate.ShortID(ep.ID), "ports", fmt.Sprint(mappings))
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

// forwardingRules are the DOCKER-USER accept rules a network needs: only a
// bound network whose chain has no firewall plugin (generated chains have
// one) and only when enabled.
func (d *Driver) forwardingRules(nw *state.Network) []translate.AcceptRule {
	if !d.cfg.DockerUserRules || !nw.Bound || d.fw == nil {
		return nil
	}
	pl, err := translate.ParseList(nw.Conflist)
	if err != nil || pl.HasPlugin("firewall") {
		return nil
	}
	return translate.DockerUserRules(nw.ID, pl.Subnets())
}

// ensureForwarding puts a network's DOCKER-USER rules in place. dockerd sets
// the FORWARD policy to DROP and bridged traffic passes iptables, so without
// them pods and containers on a conflist with no firewall plugin cannot reach
// each other.
func (d *Driver) ensureForwarding(ctx context.Context, nw *state.Network) error {
	rules := d.forwardingRules(nw)
	if len(rules) == 0 {
		return nil
	}
	done, err := d.fw.Ensure(ctx, translate.DockerUserChain, rules)
	if err != nil {
		return fmt.Errorf("accept CNI network %q in %s: %w", nw.CNINetwork, translate.DockerUserChain, err)
	}
	if done {
		d.log.InfoContext(ctx, "accepting the network's traffic in "+translate.DockerUserChain+" (its conflist has no firewall plugin; turn off with --docker-user-rules=false)",
			"network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork, "rules", len(rules))
	}
	return nil
}

func (d *Driver) removeForwarding(ctx context.Context, nw *state.Network) {
	if rules := d.forwardingRules(nw); len(rules) > 0 {
		d.fw.Remove(ctx, translate.DockerUserChain, rules)
	}
}

// EnsureAll restores the DOCKER-USER rules of every network, e.g. after a
// reboot or a dockerd restart that recreated the chain.
func (d *Driver) EnsureAll(ctx context.Context) error {
	nws, err := d.store.Networks.List()
	if err != nil {
		return err
	}
	var errs []error
	for _, nw := range nws {
		if err := d.ensureForwarding(ctx, nw); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshBinding makes new joins of a bound network use its conflist as it
// is now in the conf dir. Joined endpoints keep the list they were added
// with (their DEL needs it). A conflist that vanished, no longer parses, or
// declares a version other than the network's -o cni.version (which docker
// network inspect shows) leaves the network on its last good copy; the user
// is told in the log.
func (d *Driver) refreshBinding(ctx context.Context, nw *state.Network) {
	if !nw.Bound {
		return
	}
	log := d.log.With("network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
	f, err := cniconf.Find(d.cfg.ConfDir, nw.CNINetwork)
	if err != nil {
		log.WarnContext(ctx, "bound conflist is gone from the conf dir; joining with the copy taken when the network was made", "err", err)
		return
	}
	if bytes.Equal(f.Bytes, nw.Conflist) {
		return
	}
	pl, err := translate.ParseList(f.Bytes)
	if err == nil {
		_, err = pl.IPAM()
	}
	if err == nil && nw.VersionOption != "" && pl.CNIVersion != nw.VersionOption {
		err = fmt.Errorf("it declares cniVersion %s, the network was created with -o %s=%s", pl.CNIVersion, translate.OptVersion, nw.VersionOption)
	}
	if err != nil {
		log.WarnContext(ctx, "bound conflist changed but is not usable; joining with the previous copy", "file", f.Path, "err", err)
		return
	}
	log.InfoContext(ctx, "bound conflist changed; new joins use it, joined endpoints keep theirs", "file", f.Path)
	nw.Conflist, nw.ConfFile, nw.CNIVersion = f.Bytes, f.Path, pl.CNIVersion
	if err := d.store.Networks.Put(nw.ID, nw); err != nil {
		log.ErrorContext(ctx, "save refreshed conflist", "err", err)
	}
}

// reservedName is the container name the engine gave IPAM with the
// endpoint's address (newer engines send it in RequestAddress).
func (d *Driver) reservedName(nw *state.Network, addrs []string) string {
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		for _, pool := range nw.PoolIDs {
			if r, err := d.store.Reservations.Get(pool + "|" + p.Addr().String()); err == nil && r.Name != "" {
				return r.Name
			}
		}
	}
	return ""
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

// existingEndpoint loads an endpoint; a missing one is (nil, nil), since
// teardown calls must be safe to repeat.
func (d *Driver) existingEndpoint(id string) (*state.Endpoint, error) {
	ep, err := d.store.Endpoints.Get(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	return ep, err
}

// newMAC returns a random, locally administered, unicast MAC address.
func newMAC() string {
	b := make([]byte, 6)
	rand.Read(b)
	b[0] = b[0]&0xfc | 0x02
	return net.HardwareAddr(b).String()
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
	if err := d.store.Endpoints.Put(ep.ID, ep); err != nil {
		d.log.Error("record endpoint's container", "endpoint", translate.ShortID(ep.ID), "err", err)
	}
}

// correctClaims fixes a wrong pool claim with the evidence an endpoint
// brings: its address is reserved in exactly one pool, the one Docker
// really uses for this network. When CreateNetwork claimed another pool of
// the same subnet (creates on one subnet interleaved), the two claims are
// swapped, so that releasing a network never releases another's addresses.
func (d *Driver) correctClaims(nw *state.Network, addrs []string) error {
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			continue
		}
		rs, err := d.store.Reservations.List()
		if err != nil {
			return err
		}
		for _, r := range rs {
			if r.Address != p.Addr().String() || slices.Contains(nw.PoolIDs, r.PoolID) {
				continue
			}
			truePool, err := d.store.Pools.Get(r.PoolID)
			if err != nil {
				continue
			}
			for i, id := range nw.PoolIDs {
				claimed, err := d.store.Pools.Get(id)
				if err != nil || claimed.Subnet != truePool.Subnet {
					continue
				}
				d.log.Warn("pool claims of interleaved network creates swapped", "network", translate.ShortID(nw.ID), "pool", truePool.ID, "was", claimed.ID)
				if other, err := d.store.Networks.Get(truePool.NetworkID); err == nil {
					for j, oid := range other.PoolIDs {
						if oid == truePool.ID {
							other.PoolIDs[j] = claimed.ID
						}
					}
					if err := d.store.Networks.Put(other.ID, other); err != nil {
						return err
					}
				}
				claimed.NetworkID, truePool.NetworkID = truePool.NetworkID, nw.ID
				nw.PoolIDs[i] = truePool.ID
				for _, put := range []*state.Pool{claimed, truePool} {
					if err := d.store.Pools.Put(put.ID, put); err != nil {
						return err
					}
				}
				if err := d.store.Networks.Put(nw.ID, nw); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}
