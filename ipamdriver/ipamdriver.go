// Package ipamdriver serves Docker's remote IPAM protocol: pools are carved
// out of a bound CNI network's IPAM ranges (or made for a generated network),
// and every address is reserved in the CNI network's own IPAM store by
// running its IPAM plugin, so that any other runtime using the same conflist
// can never be given the same address.
//
// It does not configure interfaces; the network driver's Join does, with the
// address reserved here.
package ipamdriver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/ipam"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Address spaces docker-cni answers GetDefaultAddressSpaces with.
const (
	LocalSpace  = "CniLocal"
	GlobalSpace = "CniGlobal"
)

// reservationIfName is the interface name reservations are made under in the
// IPAM store; the owner ID is what identifies them.
const reservationIfName = "eth0"

// Config holds the facts the IPAM driver needs about the machine.
type Config struct {
	ConfDir string
	// DataDir is host-local's store for generated networks.
	DataDir string
	// NetNS is a netns of the daemon's own passed as CNI_NETNS to IPAM
	// plugins, which require one.
	NetNS string
	// DefaultPools are carved into /24s for networks created with neither
	// --subnet nor a binding.
	DefaultPools []netip.Prefix
}

// Driver is the IPAM driver.
type Driver struct {
	cfg   Config
	store *state.Store
	cni   cnirun.Runner
	log   *slog.Logger
	now   func() time.Time
	// mu serialises pool changes, so that clash checks see every pool.
	mu sync.Mutex
}

// New returns an IPAM driver.
func New(cfg Config, store *state.Store, cni cnirun.Runner, log *slog.Logger) *Driver {
	return &Driver{cfg: cfg, store: store, cni: cni, log: log, now: time.Now}
}

func (d *Driver) GetCapabilities(ctx context.Context, _ *struct{}) (*ipam.CapabilitiesResponse, error) {
	return &ipam.CapabilitiesResponse{RequiresMACAddress: false}, nil
}

func (d *Driver) GetDefaultAddressSpaces(ctx context.Context, _ *struct{}) (*ipam.AddressSpacesResponse, error) {
	return &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: LocalSpace, GlobalDefaultAddressSpace: GlobalSpace}, nil
}

func newNonce() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// RequestPool hands Docker a pool: from the ranges of the CNI network named
// by --ipam-opt cni.network, or, without one, a generated pool on --subnet
// (or a free /24 of the default pools).
func (d *Driver) RequestPool(ctx context.Context, req *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	if req.AddressSpace == GlobalSpace {
		return nil, errors.New("address space " + GlobalSpace + " is not supported: docker-cni serves local-scope networks only")
	}
	var want netip.Prefix
	if req.Pool != "" {
		p, err := netip.ParsePrefix(req.Pool)
		if err != nil {
			return nil, fmt.Errorf("subnet %q: %w", req.Pool, err)
		}
		if p.Addr().Is6() != req.V6 {
			return nil, fmt.Errorf("subnet %s is not an %s subnet", p, family(req.V6))
		}
		want = p.Masked()
	}
	for k := range req.Options {
		if k != translate.OptNetwork {
			return nil, fmt.Errorf("--ipam-opt %s is not supported (supported: %s)", k, translate.OptNetwork)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var pool *state.Pool
	var err error
	if name := req.Options[translate.OptNetwork]; name != "" {
		pool, err = d.boundPool(name, req, want)
	} else {
		pool, err = d.generatedPool(req, want)
	}
	if err != nil {
		return nil, err
	}
	pool.AddressSpace = req.AddressSpace
	pool.Created = d.now()
	if err := d.store.Pools.Put(pool.ID, pool); err != nil {
		return nil, fmt.Errorf("save pool %s: %w", pool.ID, err)
	}
	d.log.InfoContext(ctx, "pool requested", "pool", pool.ID, "cni_network", pool.CNINetwork, "bound", pool.Bound)
	return &ipam.RequestPoolResponse{PoolID: pool.ID, Pool: pool.Subnet, Data: map[string]string{}}, nil
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

func (d *Driver) boundPool(name string, req *ipam.RequestPoolRequest, want netip.Prefix) (*state.Pool, error) {
	if req.SubPool != "" {
		return nil, fmt.Errorf("--ip-range cannot be used with %s=%s: the CNI network's own ranges decide", translate.OptNetwork, name)
	}
	if !want.IsValid() {
		if err := d.checkRetryLoop(name, req.V6); err != nil {
			return nil, err
		}
	}
	f, err := cniconf.Find(d.cfg.ConfDir, name)
	if err != nil {
		return nil, err
	}
	pl, err := translate.ParseList(f.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CNI network %q (%s): %w", name, f.Path, err)
	}
	bp, err := pl.BoundPoolFor(req.V6, want)
	if err != nil {
		return nil, err
	}
	conf, err := translate.IPAMNetConf(pl.Name, pl.CNIVersion, bp.IPAM)
	if err != nil {
		return nil, err
	}
	return &state.Pool{
		ID:         fmt.Sprintf("%s/%s/%s", name, bp.Pool.Subnet, newNonce()),
		Subnet:     bp.Pool.Subnet.String(),
		V6:         req.V6,
		Gateway:    bp.Pool.Gateway.String(),
		CNINetwork: name,
		Bound:      true,
		ConfFile:   f.Path,
		IPAMType:   bp.IPAMType,
		CNIVersion: pl.CNIVersion,
		IPAMConf:   conf,
	}, nil
}

// retryWindow is how recent an unclaimed pool must be to count as part of
// the same `docker network create`.
const retryWindow = 30 * time.Second

// checkRetryLoop stops Docker's pool loop. Without --subnet, Docker checks
// the pool a remote IPAM driver gave against the host's routes and, when it
// overlaps (a bound network's bridge usually exists already), asks again,
// releasing the pools only when it gives up. A bound network has one pool
// per family, so a second request while the first is still unclaimed means
// the engine is looping.
func (d *Driver) checkRetryLoop(name string, v6 bool) error {
	pools, err := d.store.Pools.List()
	if err != nil {
		return fmt.Errorf("list pools: %w", err)
	}
	for _, p := range pools {
		if p.Bound && p.CNINetwork == name && p.V6 == v6 && p.NetworkID == "" && d.now().Sub(p.Created) < retryWindow {
			return fmt.Errorf("CNI network %q's subnet %s is already routed on this host (its bridge exists), "+
				"so Docker asks for another pool: give the subnet explicitly with --subnet %s", name, p.Subnet, p.Subnet)
		}
	}
	return nil
}

func (d *Driver) generatedPool(req *ipam.RequestPoolRequest, want netip.Prefix) (*state.Pool, error) {
	taken, err := d.takenSubnets()
	if err != nil {
		return nil, err
	}
	if !want.IsValid() {
		if req.V6 {
			return nil, errors.New("an IPv6 pool needs --subnet: docker-cni picks only IPv4 subnets on its own")
		}
		if want, err = translate.FreeSubnet(d.cfg.DefaultPools, 24, keys(taken)); err != nil {
			return nil, err
		}
	}
	for p, owner := range taken {
		if p.Overlaps(want) {
			return nil, fmt.Errorf("subnet %s overlaps %s of %s", want, p, owner)
		}
	}
	var rng netip.Prefix
	if req.SubPool != "" {
		if rng, err = netip.ParsePrefix(req.SubPool); err != nil {
			return nil, fmt.Errorf("--ip-range %q: %w", req.SubPool, err)
		}
		if rng = rng.Masked(); !want.Contains(rng.Addr()) || rng.Bits() < want.Bits() {
			return nil, fmt.Errorf("--ip-range %s is not inside subnet %s", rng, want)
		}
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
	return p, d.setGeneratedIPAM(p, translate.FirstHost(want))
}

// setGeneratedIPAM records the gateway of a generated pool and the IPAM
// configuration that excludes it from allocation.
func (d *Driver) setGeneratedIPAM(p *state.Pool, gw netip.Addr) error {
	subnet, _ := netip.ParsePrefix(p.Subnet)
	tp := translate.Pool{Subnet: subnet, Gateway: gw}
	if p.Range != "" {
		tp.Range, _ = netip.ParsePrefix(p.Range)
	}
	ipamSec := translate.HostLocalIPAM([]translate.Pool{tp}, true, d.cfg.DataDir)
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
func (d *Driver) takenSubnets() (map[netip.Prefix]string, error) {
	taken := map[netip.Prefix]string{}
	pools, err := d.store.Pools.List()
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
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
	files, _, err := cniconf.Load(d.cfg.ConfDir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		pl, err := translate.ParseList(f.Bytes)
		if err != nil {
			continue
		}
		for _, s := range pl.Subnets() {
			taken[s] = fmt.Sprintf("CNI network %q (%s); to share it use --ipam-opt %s=%s", f.Name, f.Path, translate.OptNetwork, f.Name)
		}
	}
	return taken, nil
}

// ReleasePool forgets a pool, releasing any address Docker did not release.
func (d *Driver) ReleasePool(ctx context.Context, req *ipam.ReleasePoolRequest) (*struct{}, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pool, err := d.store.Pools.Get(req.PoolID)
	if errors.Is(err, state.ErrNotFound) {
		d.log.WarnContext(ctx, "release of unknown pool", "pool", req.PoolID)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rs, err := d.store.Reservations.List()
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.PoolID == pool.ID {
			if err := d.release(ctx, pool, r); err != nil {
				return nil, fmt.Errorf("release pool %s: %w", pool.ID, err)
			}
		}
	}
	if err := d.store.Pools.Delete(pool.ID); err != nil {
		return nil, err
	}
	d.log.InfoContext(ctx, "pool released", "pool", pool.ID)
	return nil, nil
}

// RequestAddress answers the gateway request from the pool, and reserves
// every other address in the CNI network's IPAM store.
func (d *Driver) RequestAddress(ctx context.Context, req *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	pool, err := d.store.Pools.Get(req.PoolID)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("pool %s is unknown to docker-cni (was its state dir removed?)", req.PoolID)
	}
	if err != nil {
		return nil, err
	}
	subnet, err := netip.ParsePrefix(pool.Subnet)
	if err != nil {
		return nil, err
	}
	var want netip.Addr
	if req.Address != "" {
		if want, err = netip.ParseAddr(req.Address); err != nil {
			return nil, fmt.Errorf("address %q: %w", req.Address, err)
		}
		if !subnet.Contains(want) {
			return nil, fmt.Errorf("address %s is not in subnet %s", want, subnet)
		}
	}
	if req.Options[cnm.OptRequestAddressType] == cnm.RequestAddressTypeGateway {
		return d.gateway(ctx, pool, subnet, want)
	}
	if want.IsValid() && want.String() == pool.Gateway {
		return nil, fmt.Errorf("address %s is the gateway of subnet %s", want, subnet)
	}
	owner := "docker-" + newNonce() + newNonce() + newNonce()
	conf, err := translate.WithRequestedIP(pool.IPAMConf, want)
	if err != nil {
		return nil, err
	}
	args := cnirun.PluginArgs{ContainerID: owner, IfName: reservationIfName, NetNS: d.cfg.NetNS}
	res, err := d.cni.PluginAdd(ctx, pool.IPAMType, conf, args)
	if err != nil {
		if want.IsValid() {
			return nil, fmt.Errorf("reserve %s in CNI network %q: %w", want, pool.CNINetwork, err)
		}
		return nil, fmt.Errorf("reserve an address in CNI network %q: %w", pool.CNINetwork, err)
	}
	addr, ok := addressIn(res, subnet)
	if !ok || (want.IsValid() && addr != want) {
		// Never leak what the plugin reserved.
		if derr := d.cni.PluginDel(ctx, pool.IPAMType, pool.IPAMConf, args); derr != nil {
			d.log.ErrorContext(ctx, "release unexpected reservation", "owner", owner, "err", derr)
		}
		if ok {
			return nil, fmt.Errorf("CNI network %q: IPAM plugin %s reserved %s, not the requested %s", pool.CNINetwork, pool.IPAMType, addr, want)
		}
		return nil, fmt.Errorf("CNI network %q: IPAM plugin %s returned no address in %s (result %v)", pool.CNINetwork, pool.IPAMType, subnet, res.IPs)
	}
	r := &state.Reservation{
		Key: pool.ID + "|" + addr.String(), PoolID: pool.ID, Address: addr.String(),
		OwnerID: owner, IfName: reservationIfName, Name: req.Options[cnm.OptEndpointName], Created: d.now(),
	}
	if err := d.store.Reservations.Put(r.Key, r); err != nil {
		d.cni.PluginDel(ctx, pool.IPAMType, pool.IPAMConf, args)
		return nil, fmt.Errorf("save reservation of %s: %w", addr, err)
	}
	d.log.InfoContext(ctx, "address reserved", "pool", pool.ID, "address", addr, "owner", owner)
	return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(addr, subnet.Bits()).String(), Data: map[string]string{}}, nil
}

func addressIn(res *current.Result, subnet netip.Prefix) (netip.Addr, bool) {
	for _, ipc := range res.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		a = a.Unmap()
		if subnet.Contains(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

func (d *Driver) gateway(ctx context.Context, pool *state.Pool, subnet netip.Prefix, want netip.Addr) (*ipam.RequestAddressResponse, error) {
	gw, _ := netip.ParseAddr(pool.Gateway)
	if want.IsValid() && want != gw {
		if pool.Bound {
			return nil, fmt.Errorf("--gateway %s disagrees with CNI network %q, whose gateway for %s is %s", want, pool.CNINetwork, subnet, gw)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		if err := d.setGeneratedIPAM(pool, want); err != nil {
			return nil, err
		}
		if err := d.store.Pools.Put(pool.ID, pool); err != nil {
			return nil, err
		}
		gw = want
	}
	return &ipam.RequestAddressResponse{Address: netip.PrefixFrom(gw, subnet.Bits()).String(), Data: map[string]string{}}, nil
}

// ReleaseAddress releases a reservation in the CNI IPAM store. Releasing the
// gateway, or an address docker-cni does not know, does nothing.
func (d *Driver) ReleaseAddress(ctx context.Context, req *ipam.ReleaseAddressRequest) (*struct{}, error) {
	pool, err := d.store.Pools.Get(req.PoolID)
	if errors.Is(err, state.ErrNotFound) {
		d.log.WarnContext(ctx, "release in unknown pool", "pool", req.PoolID, "address", req.Address)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if req.Address == pool.Gateway {
		return nil, nil
	}
	a, err := netip.ParseAddr(req.Address)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", req.Address, err)
	}
	r, err := d.store.Reservations.Get(pool.ID + "|" + a.String())
	if errors.Is(err, state.ErrNotFound) {
		d.log.WarnContext(ctx, "release of unknown address", "pool", pool.ID, "address", a)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, d.release(ctx, pool, r)
}

func (d *Driver) release(ctx context.Context, pool *state.Pool, r *state.Reservation) error {
	args := cnirun.PluginArgs{ContainerID: r.OwnerID, IfName: r.IfName, NetNS: d.cfg.NetNS}
	if err := d.cni.PluginDel(ctx, pool.IPAMType, pool.IPAMConf, args); err != nil {
		return fmt.Errorf("release %s in CNI network %q: %w", r.Address, pool.CNINetwork, err)
	}
	if err := d.store.Reservations.Delete(r.Key); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "address released", "pool", pool.ID, "address", r.Address, "owner", r.OwnerID)
	return nil
}
