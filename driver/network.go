package driver

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// CreateNetwork binds the network to a CNI conflist (bound) or generates one.
func (d *Driver) CreateNetwork(ctx context.Context, req *network.CreateNetworkRequest) (*struct{}, error) {
	if req.NetworkID == "" {
		return nil, cnm.MissingID("create network", "no network ID in the request")
	}
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
	pools, dockerIPAM, err := d.poolsOf(data)
	if err != nil {
		return nil, err
	}
	binding, err := translate.CheckBinding(poolBinding(pools), opts.CNINetwork, dockerIPAM)
	if err != nil {
		return nil, err
	}
	nw := &state.Network{
		ID: req.NetworkID, Internal: opts.Internal, JoinMode: string(opts.Join), DockerIPAM: dockerIPAM, Created: d.now(),
		ArgsIdentity: opts.Args.Identity, Args: opts.Args.Pairs,
	}
	for _, p := range pools {
		nw.PoolIDs = append(nw.PoolIDs, p.ID)
		nw.Gateways = append(nw.Gateways, p.Gateway)
	}
	if binding != "" {
		err = d.bind(nw, binding, opts)
	} else {
		err = d.generate(nw, data, pools, opts)
	}
	if err == nil {
		err = d.validate(ctx, nw, opts)
	}
	if err != nil {
		return nil, err
	}
	if _, err := d.ensureForwarding(ctx, nw); err != nil {
		return nil, err
	}
	if err := d.pools.Claim(nw); err != nil {
		d.removeForwarding(ctx, nw)
		return nil, fmt.Errorf("save: %w", err)
	}
	return nw, nil
}

// poolsOf finds docker-cni's pools among the IPAM data of CreateNetwork;
// dockerIPAM says Docker's own IPAM serves the network instead.
func (d *Driver) poolsOf(data []*network.IPAMData) (pools []*state.Pool, dockerIPAM bool, err error) {
	var ours []string
	for _, dd := range data {
		if dd.AddressSpace == cnm.LocalSpace || dd.AddressSpace == cnm.GlobalSpace {
			ours = append(ours, dd.Pool)
		} else {
			dockerIPAM = true
		}
	}
	if len(ours) > 0 && dockerIPAM {
		return nil, false, errors.New("the IPv4 and IPv6 pools must both come from the cni IPAM driver")
	}
	if len(ours) == 0 {
		return nil, dockerIPAM, nil
	}
	if pools, err = d.pools.Unclaimed(ours); err != nil {
		return nil, false, err
	}
	for _, p := range pools[1:] {
		if poolBinding([]*state.Pool{p}) != poolBinding(pools) {
			return nil, false, fmt.Errorf("pools %s and %s come from different CNI networks", pools[0].ID, p.ID)
		}
	}
	return pools, false, nil
}

// poolBinding is the CNI network the pools were bound to with --ipam-opt
// cni.network ("" for generated pools).
func poolBinding(pools []*state.Pool) string {
	if len(pools) == 0 || !pools[0].Bound {
		return ""
	}
	return pools[0].CNINetwork
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
	pl, err := cniconf.Parse(f.Bytes)
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

func (d *Driver) generate(nw *state.Network, data []*network.IPAMData, pools []*state.Pool, opts translate.NetworkOptions) error {
	tps, err := translatePools(data, pools)
	if err != nil {
		return err
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
	if err := d.checkBridgeFree(nw.ID, bridge); err != nil {
		return err
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

// translatePools reads the pools of CreateNetwork's IPAM data, with the
// --ip-range of docker-cni's pools.
func translatePools(data []*network.IPAMData, pools []*state.Pool) ([]translate.Pool, error) {
	if len(data) == 0 {
		return nil, errors.New("no address pool: docker-cni networks need IPAM")
	}
	var tps []translate.Pool
	for i, dd := range data {
		subnet, err := netip.ParsePrefix(dd.Pool)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", dd.Pool, err)
		}
		tp := translate.Pool{Subnet: subnet.Masked()}
		if dd.Gateway != "" {
			gw, err := netip.ParsePrefix(dd.Gateway)
			if err != nil {
				return nil, fmt.Errorf("gateway %q: %w", dd.Gateway, err)
			}
			tp.Gateway = gw.Addr()
		}
		if i < len(pools) && pools[i].Range != "" {
			tp.Range, _ = netip.ParsePrefix(pools[i].Range)
		}
		tps = append(tps, tp)
	}
	return tps, nil
}

// checkBridgeFree refuses a bridge name another docker-cni network uses.
func (d *Driver) checkBridgeFree(networkID, bridge string) error {
	return d.store.View(func(tx *state.Tx) error {
		others, err := tx.Networks()
		if err != nil {
			return err
		}
		for _, o := range others {
			if o.BridgeName == bridge && o.ID != networkID {
				return fmt.Errorf("bridge %s is already used by network %s", bridge, translate.ShortID(o.ID))
			}
		}
		return nil
	})
}

// ChainValidator checks that a conflist's plugins exist and support its
// CNI version (CNI VERSION); package cnirun implements it.
type ChainValidator interface {
	Validate(ctx context.Context, list []byte) error
}

// ValidateChain checks that every plugin the joins of a network on
// conflist will run (the chain, with docker-cni's substitution if any and
// the static IPAM docker-cni gives it, addresses of gateways' families)
// exists and supports the conflist's CNI version: what network create
// refuses, for `docker-cni doctor` too.
func ValidateChain(ctx context.Context, v ChainValidator, conflist []byte, gateways []string) error {
	pl, err := translate.ParseList(conflist)
	if err != nil {
		return err
	}
	var probe []translate.StaticAddress
	for _, g := range gateways {
		if a, err := netip.ParseAddr(g); err == nil {
			probe = append(probe, translate.StaticAddress{Address: netip.PrefixFrom(a, a.BitLen())})
		}
	}
	list, err := pl.WithStaticIPAM(probe)
	if err != nil {
		return err
	}
	return v.Validate(ctx, list)
}

// validate checks that every plugin the network's joins will run exists
// and supports the conflist's CNI version, and that -o cni.args suits the
// chain.
func (d *Driver) validate(ctx context.Context, nw *state.Network, opts translate.NetworkOptions) error {
	pl, err := translate.ParseList(nw.Conflist)
	if err != nil {
		return err
	}
	if _, err := pl.ArgsFor(opts.Args); err != nil {
		return err
	}
	if sub := pl.Substitution(); sub != "" {
		d.log.InfoContext(ctx, "the network's containers run a chain of docker-cni's instead of the conflist's main plugin", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork, "substitution", sub, "plugins", pl.PluginTypes())
	}
	err = ValidateChain(ctx, d.cni, nw.Conflist, nw.Gateways)
	var ve *cnirun.VersionError
	switch {
	case err == nil:
		return nil
	case opts.CNIVersion != "" && !nw.Bound && errors.As(err, &ve):
		return fmt.Errorf("-o %s=%s cannot run the generated chain: CNI network %q: %w", translate.OptVersion, opts.CNIVersion, nw.CNINetwork, err)
	case pl.Substitution() != "":
		return fmt.Errorf("CNI network %q (its containers run %v, docker-cni's %s chain): %w", nw.CNINetwork, pl.PluginTypes(), pl.Substitution(), err)
	}
	return fmt.Errorf("CNI network %q: %w", nw.CNINetwork, err)
}

// deleteBridge deletes the bridge a generated network made, unless
// something else uses it by now: a bridge named after a CNI conflist's
// (-o com.docker.network.bridge.name=cni0 before kubelet's first pod)
// carries the pods' interfaces too.
func (d *Driver) deleteBridge(ctx context.Context, nw *state.Network) error {
	if nw.BridgeName == "" || !nw.OwnsBridge {
		return nil
	}
	ports, err := d.ns.BridgePorts(nw.BridgeName)
	if err != nil {
		return err
	}
	if len(ports) > 0 {
		d.log.WarnContext(ctx, "not deleting the network's bridge: other interfaces use it", "network", translate.ShortID(nw.ID), "bridge", nw.BridgeName, "ports", ports)
		return nil
	}
	return d.ns.DeleteHostLink(nw.BridgeName)
}

// DeleteNetwork forgets a network, tearing down endpoints Docker did not
// delete and the bridge of a generated network.
func (d *Driver) DeleteNetwork(ctx context.Context, req *network.DeleteNetworkRequest) (*struct{}, error) {
	if req.NetworkID == "" {
		return nil, cnm.MissingID("delete network", "no network ID in the request")
	}
	d.awaitRecord(ctx, d.hasNetwork(req.NetworkID), false)
	unlock := d.locks.lock(req.NetworkID)
	defer unlock()
	nw, err := d.network(req.NetworkID)
	if errors.Is(err, state.ErrNotFound) {
		return nil, d.deleteUnknownNetwork(ctx, req.NetworkID)
	}
	if err != nil {
		return nil, err
	}
	if err := d.deleteNetwork(ctx, nw); err != nil {
		return nil, fmt.Errorf("delete network %s: %w", translate.ShortID(nw.ID), err)
	}
	d.log.InfoContext(ctx, "network deleted", "network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
	return nil, nil
}

func (d *Driver) deleteNetwork(ctx context.Context, nw *state.Network) error {
	if err := d.deleteEndpoints(ctx, nw); err != nil {
		return err
	}
	d.removeForwarding(ctx, nw)
	if err := d.deleteBridge(ctx, nw); err != nil {
		return err
	}
	return d.store.Update(func(tx *state.Tx) error { return tx.DeleteNetwork(nw.ID) })
}
