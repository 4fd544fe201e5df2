package pools

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Request is Docker's RequestPool.
type Request struct {
	AddressSpace string
	// Pool is --subnet ("" for any), SubPool --ip-range.
	Pool, SubPool string
	V6            bool
	// Options are the --ipam-opt options.
	Options map[string]string
}

// Request hands Docker a pool: from the ranges of the CNI network named by
// --ipam-opt cni.network, or, without one, a generated pool on --subnet (or
// a free /24 of the default pools).
func (a *Authority) Request(ctx context.Context, req Request) (*state.Pool, error) {
	if req.AddressSpace == cnm.GlobalSpace {
		return nil, errors.New("address space " + cnm.GlobalSpace + " is not supported: docker-cni serves local-scope networks only")
	}
	want, err := wantedSubnet(req)
	if err != nil {
		return nil, err
	}
	for k := range req.Options {
		if k != translate.OptNetwork {
			return nil, fmt.Errorf("--ipam-opt %s is not supported (supported: %s)", k, translate.OptNetwork)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var pool *state.Pool
	if name := req.Options[translate.OptNetwork]; name != "" {
		pool, err = a.boundPool(name, req, want)
	} else {
		pool, err = a.generatedPool(req, want)
	}
	if err != nil {
		return nil, err
	}
	pool.AddressSpace, pool.Created = req.AddressSpace, a.now()
	if err := a.store.Update(func(tx *state.Tx) error { return tx.PutPool(pool) }); err != nil {
		return nil, fmt.Errorf("save pool %s: %w", pool.ID, err)
	}
	a.log.InfoContext(ctx, "pool requested", "pool", pool.ID, "cni_network", pool.CNINetwork, "bound", pool.Bound)
	return pool, nil
}

func wantedSubnet(req Request) (netip.Prefix, error) {
	if req.Pool == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(req.Pool)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %q: %w", req.Pool, err)
	}
	if p.Addr().Is6() != req.V6 {
		return netip.Prefix{}, fmt.Errorf("subnet %s is not an %s subnet", p, family(req.V6))
	}
	return p.Masked(), nil
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

func (a *Authority) boundPool(name string, req Request, want netip.Prefix) (*state.Pool, error) {
	if req.SubPool != "" {
		return nil, fmt.Errorf("--ip-range cannot be used with %s=%s: the CNI network's own ranges decide", translate.OptNetwork, name)
	}
	if !want.IsValid() {
		if err := a.checkRetryLoop(name, req.V6); err != nil {
			return nil, err
		}
	}
	p := &state.Pool{V6: req.V6, CNINetwork: name, Bound: true}
	if err := a.bindPool(p, want); err != nil {
		return nil, err
	}
	p.ID = fmt.Sprintf("%s/%s/%s", name, p.Subnet, newNonce())
	return p, nil
}

// bindPool fills in a bound pool from its CNI network as the conf dir (and,
// for flannel, the node's subnet file) has it now.
func (a *Authority) bindPool(p *state.Pool, want netip.Prefix) error {
	f, err := cniconf.Find(a.cfg.ConfDir, p.CNINetwork)
	if err != nil {
		return err
	}
	pl, err := cniconf.Parse(f.Bytes)
	if err != nil {
		return fmt.Errorf("CNI network %q (%s): %w", p.CNINetwork, f.Path, err)
	}
	bp, err := pl.BoundPoolFor(p.V6, want)
	if err != nil {
		return err
	}
	conf, err := pl.IPAMRunConf(bp.IPAM)
	if err != nil {
		return err
	}
	p.Subnet, p.Gateway, p.GatewayFree = bp.Pool.Subnet.String(), bp.Pool.Gateway.String(), bp.GatewayFree
	p.ConfFile, p.IPAMType, p.CNIVersion, p.IPAMConf = f.Path, bp.IPAMType, pl.CNIVersion, conf
	p.SubnetFile, _ = pl.FlannelSubnetFile()
	return nil
}

// checkRetryLoop stops Docker's pool loop. Without --subnet, Docker checks
// the pool a remote IPAM driver gave against the host's routes and, when it
// overlaps (a bound network's bridge usually exists already), asks again,
// releasing the pools only when it gives up. A bound network has one pool
// per family, so a second request while the first is still unclaimed means
// the engine is looping.
func (a *Authority) checkRetryLoop(name string, v6 bool) error {
	pools, err := a.list()
	if err != nil {
		return err
	}
	for _, p := range pools {
		if p.Bound && p.CNINetwork == name && p.V6 == v6 && p.NetworkID == "" && a.now().Sub(p.Created) < ClaimWindow {
			return fmt.Errorf("CNI network %q's subnet %s is already routed on this host (its bridge exists), "+
				"so Docker asks for another pool: give the subnet explicitly with --subnet %s", name, p.Subnet, p.Subnet)
		}
	}
	return nil
}

func (a *Authority) list() ([]*state.Pool, error) {
	var pools []*state.Pool
	err := a.store.View(func(tx *state.Tx) (err error) {
		pools, err = tx.Pools()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	return pools, nil
}

func (a *Authority) generatedPool(req Request, want netip.Prefix) (*state.Pool, error) {
	taken, err := a.takenSubnets()
	if err != nil {
		return nil, err
	}
	if !want.IsValid() {
		if req.V6 {
			return nil, errors.New("an IPv6 pool needs --subnet: docker-cni picks only IPv4 subnets on its own")
		}
		if want, err = translate.FreeSubnet(a.cfg.DefaultPools, 24, keys(taken)); err != nil {
			return nil, err
		}
	}
	for p, owner := range taken {
		if p.Overlaps(want) {
			return nil, fmt.Errorf("subnet %s overlaps %s of %s", want, p, owner)
		}
	}
	rng, err := ipRange(req.SubPool, want)
	if err != nil {
		return nil, err
	}
	name := translate.GeneratedName(want)
	p := &state.Pool{
		ID:         fmt.Sprintf("%s/%s", name, newNonce()),
		Subnet:     want.String(),
		V6:         req.V6,
		CNINetwork: name,
		IPAMType:   "host-local",
		CNIVersion: translate.DefaultCNIVersion,
	}
	if rng.IsValid() {
		p.Range = rng.String()
	}
	return p, a.setGeneratedIPAM(p, translate.FirstHost(want))
}

// ipRange parses --ip-range, which must lie inside subnet.
func ipRange(s string, subnet netip.Prefix) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, nil
	}
	rng, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("--ip-range %q: %w", s, err)
	}
	if rng = rng.Masked(); !subnet.Contains(rng.Addr()) || rng.Bits() < subnet.Bits() {
		return netip.Prefix{}, fmt.Errorf("--ip-range %s is not inside subnet %s", rng, subnet)
	}
	return rng, nil
}

// setGeneratedIPAM records the gateway of a generated pool and the IPAM
// configuration that excludes it from allocation.
func (a *Authority) setGeneratedIPAM(p *state.Pool, gw netip.Addr) error {
	subnet, _ := netip.ParsePrefix(p.Subnet)
	tp := translate.Pool{Subnet: subnet, Gateway: gw}
	if p.Range != "" {
		tp.Range, _ = netip.ParsePrefix(p.Range)
	}
	ipamSec := translate.HostLocalIPAM([]translate.Pool{tp}, true, a.cfg.DataDir)
	conf, err := translate.IPAMNetConf(p.CNINetwork, p.CNIVersion, ipamSec)
	if err != nil {
		return err
	}
	p.Gateway, p.IPAMConf = gw.String(), conf
	return nil
}

func keys(m map[netip.Prefix]string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// takenSubnets lists the subnets a generated pool must not overlap: every
// pool docker-cni handed out, and every range of the conf dir's networks.
func (a *Authority) takenSubnets() (map[netip.Prefix]string, error) {
	taken := map[netip.Prefix]string{}
	pools, err := a.list()
	if err != nil {
		return nil, err
	}
	for _, p := range pools {
		if s, err := netip.ParsePrefix(p.Subnet); err == nil {
			owner := fmt.Sprintf("docker-cni pool %s", p.ID)
			if p.NetworkID != "" {
				owner += fmt.Sprintf(" (Docker network %s)", translate.ShortID(p.NetworkID))
			}
			taken[s] = owner
		}
	}
	files, _, err := cniconf.Load(a.cfg.ConfDir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		pl, err := cniconf.Parse(f.Bytes)
		if err != nil {
			continue
		}
		for _, s := range pl.Subnets() {
			taken[s] = fmt.Sprintf("CNI network %q (%s); to share it use --ipam-opt %s=%s", f.Name, f.Path, translate.OptNetwork, f.Name)
		}
	}
	return taken, nil
}
