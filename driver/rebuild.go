package driver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// AttachmentCache reads libcni's cache of attachments; package cnirun
// implements it. network "" matches any CNI network.
type AttachmentCache interface {
	Cached(containerID, network string) (*libcni.NetworkAttachment, json.RawMessage, error)
}

// Rebuilder is awaited when a call names a network or an endpoint the
// state does not know (see pools.Rebuilder); Settled says a complete
// rebuild has run since the daemon started.
type Rebuilder interface {
	pools.Rebuilder
	Settled() bool
}

// SetRebuilder gives the driver the daemon's rebuilder.
func (d *Driver) SetRebuilder(r Rebuilder) { d.rebuilder = r }

// Rebuilt counts what Rebuild made again.
type Rebuilt struct{ Networks, Endpoints int }

// Rebuild makes the records of the networks the engines list and docker-cni
// does not know (its state database was lost, or corrupt and moved aside),
// as CreateNetwork made them, and of their running containers' endpoints,
// from the IPAM stores (who holds each address) and libcni's cache (the
// attachment ADD made). Records it has are left as they are. A network it
// cannot make again is an error, and the others are made.
func (d *Driver) Rebuild(ctx context.Context, nws []engine.Network) (Rebuilt, error) {
	var n Rebuilt
	var errs []error
	for _, nf := range nws {
		nw, made, err := d.rebuildNetwork(ctx, nf)
		if err != nil {
			errs = append(errs, fmt.Errorf("rebuild network %s (%q on %s): %w", translate.ShortID(nf.ID), nf.Name, nf.Host, err))
			continue
		}
		if made {
			n.Networks++
		}
		for _, ef := range nf.Endpoints {
			made, err := d.rebuildEndpoint(ctx, nw, ef)
			if err != nil {
				errs = append(errs, fmt.Errorf("rebuild endpoint %s of container %s on network %s: %w", translate.ShortID(ef.ID), ef.Name, translate.ShortID(nf.ID), err))
			}
			if made {
				n.Endpoints++
			}
		}
	}
	return n, errors.Join(errs...)
}

// rebuildNetwork returns the network's record, made again from what the
// engine says of it if there is none.
func (d *Driver) rebuildNetwork(ctx context.Context, nf engine.Network) (*state.Network, bool, error) {
	unlock := d.locks.lock(nf.ID)
	defer unlock()
	nw, err := d.network(nf.ID)
	if !errors.Is(err, state.ErrNotFound) {
		return nw, false, err
	}
	req, err := d.createRequest(ctx, nf)
	if err != nil {
		return nil, false, err
	}
	if nw, err = d.createNetwork(ctx, req); err != nil {
		return nil, false, err
	}
	if !nw.Bound && !nw.OwnsBridge && nw.BridgeName == translate.GeneratedBridgeName(nw.ID) {
		// The bridge exists (the network's containers use it), and its
		// name says docker-cni made it.
		nw.OwnsBridge = true
		if err := d.saveNetwork(nw); err != nil {
			return nil, false, err
		}
	}
	d.log.WarnContext(ctx, "network rebuilt from the engine: docker-cni had no record of it", "network", translate.ShortID(nw.ID),
		"name", nf.Name, "docker_host", nf.Host, "cni_network", nw.CNINetwork, "bound", nw.Bound)
	return nw, true, nil
}

// createRequest is the CreateNetwork call that made a network, from the
// engine's inspect: its options, and its pools (docker-cni's, rebuilt, or
// Docker's own IPAM's).
func (d *Driver) createRequest(ctx context.Context, nf engine.Network) (*network.CreateNetworkRequest, error) {
	ours := nf.IPAMDriver == nf.Driver
	req := &network.CreateNetworkRequest{NetworkID: nf.ID, Options: map[string]any{
		cnm.OptGeneric: genericOptions(nf.Options), cnm.OptEnableIPv6: nf.EnableIPv6, cnm.OptInternal: nf.Internal,
	}}
	for _, c := range nf.IPAM {
		subnet, err := netip.ParsePrefix(c.Subnet)
		if err != nil {
			return nil, fmt.Errorf("IPAM subnet %q: %w", c.Subnet, err)
		}
		gw, _ := netip.ParseAddr(c.Gateway)
		data := &network.IPAMData{AddressSpace: "LocalDefault", Pool: subnet.Masked().String()}
		if ours {
			p, err := d.pools.RebuildPool(ctx, pools.Request{AddressSpace: cnm.LocalSpace, Pool: data.Pool, SubPool: c.IPRange,
				V6: subnet.Addr().Is6(), Options: nf.IPAMOptions}, gw)
			if err != nil {
				return nil, err
			}
			data.AddressSpace = cnm.LocalSpace
			gw, _ = netip.ParseAddr(p.Gateway)
		}
		if gw.IsValid() {
			data.Gateway = netip.PrefixFrom(gw, subnet.Bits()).String()
		}
		if subnet.Addr().Is6() {
			req.IPv6Data = append(req.IPv6Data, data)
		} else {
			req.IPv4Data = append(req.IPv4Data, data)
		}
	}
	return req, nil
}

func genericOptions(opts map[string]string) map[string]any {
	out := make(map[string]any, len(opts))
	for k, v := range opts {
		out[k] = v
	}
	return out
}

// rebuildEndpoint makes the record of a running container's endpoint the
// state does not know: its reservations as the IPAM store holds them, and
// its attachment as libcni's cache holds it (else as Join would have made
// it), so that its Leave and DeleteEndpoint undo everything.
func (d *Driver) rebuildEndpoint(ctx context.Context, nw *state.Network, ef engine.Endpoint) (bool, error) {
	unlock := d.locks.lock(ef.ID)
	defer unlock()
	if d.deleted.has(ef.ID, d.now()) {
		return false, nil
	}
	if ep, err := d.existingEndpoint(ef.ID); ep != nil || err != nil {
		return false, err
	}
	var errs []error
	for _, a := range ef.Addresses {
		if id := d.poolOf(nw, a); id != "" {
			errs = append(errs, d.pools.AdoptReservation(ctx, id, a, ef.Name))
		}
	}
	ep := &state.Endpoint{ID: ef.ID, NetworkID: nw.ID, Name: ef.Name, ContainerID: ef.ContainerID, Addresses: ef.Addresses, MAC: ef.MAC, Created: d.now()}
	if err := d.fromReservations(nw, ep); err != nil {
		return false, err
	}
	att, err := d.rebuiltAttachment(nw, ep, ef.SandboxKey)
	if err != nil {
		return false, errors.Join(append(errs, err)...)
	}
	ep.Attachment = att
	if err := d.saveEndpoint(ep); err != nil {
		return false, errors.Join(append(errs, err)...)
	}
	d.log.InfoContext(ctx, "endpoint rebuilt from the engine", "network", translate.ShortID(nw.ID), "endpoint", translate.ShortID(ep.ID),
		"container", ep.Name, "addresses", ep.Addresses, "mode", att.Mode, "from_cni_cache", att.Result != nil)
	return true, errors.Join(errs...)
}

// KnownEndpoint says whether the state has a record of the endpoint.
func (d *Driver) KnownEndpoint(id string) bool { return d.hasEndpoint(id)() }

// poolOf is the pool of nw whose subnet holds cidr ("" for none).
func (d *Driver) poolOf(nw *state.Network, cidr string) string {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return ""
	}
	id, _ := state.Read(d.store, func(tx *state.Tx) (string, error) {
		for _, pid := range nw.PoolIDs {
			if pool, err := tx.Pool(pid); err == nil && pool.Subnet == p.Masked().String() {
				return pid, nil
			}
		}
		return "", nil
	})
	return id
}

// rebuiltAttachment is an endpoint's attachment as libcni's cache keeps it,
// or, without a cache entry, as Join would have planned it.
func (d *Driver) rebuiltAttachment(nw *state.Network, ep *state.Endpoint, sandboxKey string) (*state.Attachment, error) {
	f := translate.RebuiltFacts{EndpointID: ep.ID, Addresses: ep.Addresses, Gateways: ep.Gateways, SandboxKey: sandboxKey}
	var result json.RawMessage
	if d.cache != nil {
		if c, res, err := d.cache.Cached(ep.ID, nw.CNINetwork); err == nil && c != nil {
			f.Cached = &translate.CachedAttachment{Conflist: c.Config, IfName: c.IfName, NetNS: c.NetNS, Args: c.CniArgs, Capability: c.CapabilityArgs}
			result = res
		}
	}
	if f.Cached == nil && ep.MAC != "" && d.ns.IsNetNS(sandboxKey) {
		f.IfName, _ = d.ns.LinkNameByMAC(sandboxKey, ep.MAC)
	}
	plan, err := translate.RebuiltPlan(joinNetwork(nw), f, translate.JoinHost{ScratchDir: d.cfg.ScratchDir, K8sNamespace: d.cfg.K8sNamespace})
	if err != nil {
		return nil, err
	}
	att := attachmentOf(plan, ep.ID, sandboxKey, d.now())
	att.MAC, att.OwnPortMap, att.SkipReclaim, att.Result = ep.MAC, plan.OwnPortMap, plan.SkipReclaim, result
	return att, nil
}

// joinNetwork is what a Join plan needs of a network record.
func joinNetwork(nw *state.Network) translate.JoinNetwork {
	return translate.JoinNetwork{CNINetwork: nw.CNINetwork, Conflist: nw.Conflist, Gateways: nw.Gateways, Internal: nw.Internal,
		Join: translate.JoinMode(nw.JoinMode), Bound: nw.Bound, Args: translate.NetworkArgs{Identity: nw.ArgsIdentity, Pairs: nw.Args}}
}

// recentWindow is how long a deleted endpoint is remembered: longer than
// an engine takes to finish a delete it told the driver of.
const recentWindow = 2 * time.Minute

// recentSet is a set of IDs, each forgotten recentWindow after it was
// added.
type recentSet struct {
	mu  sync.Mutex
	ids map[string]time.Time
}

func (r *recentSet) add(id string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]time.Time{}
	}
	for k, t := range r.ids {
		if now.Sub(t) > recentWindow {
			delete(r.ids, k)
		}
	}
	r.ids[id] = now
}

func (r *recentSet) has(id string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.ids[id]
	return ok && now.Sub(t) <= recentWindow
}
