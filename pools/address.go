package pools

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// knownPool loads the pool a Docker IPAM call names, making its records
// again if they were lost (resolve).
func (a *Authority) knownPool(ctx context.Context, id string) (*state.Pool, error) {
	return a.resolve(ctx, id)
}

// Gateway answers Docker's gateway request: the pool's gateway, or, for a
// generated pool, the --gateway asked for, which is then kept out of
// allocation. It is not reserved: host-local never hands out a range's
// gateway.
func (a *Authority) Gateway(ctx context.Context, poolID string, want netip.Addr) (netip.Prefix, error) {
	if _, err := a.resolve(ctx, poolID); err != nil {
		return netip.Prefix{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	pool, subnet, err := a.poolAndSubnet(ctx, poolID, want)
	if err != nil {
		return netip.Prefix{}, err
	}
	gw, _ := netip.ParseAddr(pool.Gateway)
	if want.IsValid() && want != gw {
		switch {
		case pool.Bound && !pool.GatewayFree:
			return netip.Prefix{}, fmt.Errorf("--gateway %s disagrees with CNI network %q, whose gateway for %s is %s", want, pool.CNINetwork, subnet, gw)
		case pool.Bound:
			pool.Gateway = want.String()
		default:
			if err := a.setGeneratedIPAM(pool, want); err != nil {
				return netip.Prefix{}, err
			}
		}
		if err := a.store.Update(func(tx *state.Tx) error { return tx.PutPool(pool) }); err != nil {
			return netip.Prefix{}, fmt.Errorf("save pool %s: %w", pool.ID, err)
		}
		gw = want
	}
	return netip.PrefixFrom(gw, subnet.Bits()), nil
}

// poolAndSubnet loads a pool and checks that want, if valid, is in it.
func (a *Authority) poolAndSubnet(ctx context.Context, poolID string, want netip.Addr) (*state.Pool, netip.Prefix, error) {
	pool, err := a.knownPool(ctx, poolID)
	if err != nil {
		return nil, netip.Prefix{}, err
	}
	subnet, err := netip.ParsePrefix(pool.Subnet)
	if err != nil {
		return nil, netip.Prefix{}, fmt.Errorf("pool %s: subnet %q: %w", pool.ID, pool.Subnet, err)
	}
	if want.IsValid() && !subnet.Contains(want) {
		return nil, netip.Prefix{}, fmt.Errorf("address %s is not in subnet %s", want, subnet)
	}
	return pool, subnet, nil
}

// Reserve reserves an address (want, or any when it is not valid) in the
// CNI network's IPAM store under a new owner ID, for the container name
// (when the engine sent it), and returns it with the subnet's length.
func (a *Authority) Reserve(ctx context.Context, poolID string, want netip.Addr, name string) (netip.Prefix, error) {
	pool, subnet, err := a.poolAndSubnet(ctx, poolID, netip.Addr{})
	if err == nil {
		pool, subnet, err = a.followLease(ctx, pool, subnet)
	}
	if err == nil && want.IsValid() && !subnet.Contains(want) {
		err = fmt.Errorf("address %s is not in subnet %s", want, subnet)
	}
	if err != nil {
		return netip.Prefix{}, err
	}
	if want.IsValid() && want.String() == pool.Gateway {
		return netip.Prefix{}, fmt.Errorf("address %s is the gateway of subnet %s", want, subnet)
	}
	conf, ipamArgs, err := translate.WithRequestedIP(pool.IPAMConf, pool.IPAMType, netip.PrefixFrom(want, subnet.Bits()))
	if err != nil {
		return netip.Prefix{}, err
	}
	// The intent is recorded before the IPAM plugin runs: after a crash
	// (or a plugin that outlived its deadline) it says what to release.
	in, err := a.intend(pool)
	if err != nil {
		return netip.Prefix{}, err
	}
	args := cnirun.PluginArgs{ContainerID: in.ID, IfName: in.IfName, NetNS: a.cfg.NetNS, Args: ipamArgs}
	res, err := a.cni.PluginAdd(ctx, pool.IPAMType, conf, args)
	if err != nil {
		a.undo(ctx, in)
		if want.IsValid() {
			return netip.Prefix{}, fmt.Errorf("reserve %s in CNI network %q: %w", want, pool.CNINetwork, err)
		}
		return netip.Prefix{}, fmt.Errorf("reserve an address in CNI network %q: %w", pool.CNINetwork, err)
	}
	addr, gw, err := a.checkReserved(pool, subnet, want, res)
	if err == nil {
		r := &state.Reservation{
			PoolID: pool.ID, Address: addr.String(), OwnerID: in.ID, IfName: in.IfName,
			Name: name, Gateway: gw, Created: a.now(),
		}
		err = a.store.Update(func(tx *state.Tx) error {
			if err := putNew(tx, pool, r); err != nil {
				return err
			}
			return tx.DeleteIntent(in.ID)
		})
	}
	if err != nil {
		a.undo(ctx, in)
		return netip.Prefix{}, err
	}
	a.log.InfoContext(ctx, "address reserved", "pool", pool.ID, "address", addr, "owner", in.ID)
	return netip.PrefixFrom(addr, subnet.Bits()), nil
}

// putNew records a reservation, refusing an address docker-cni already
// holds: an IPAM plugin that keeps no store (static) gives every caller the
// same address.
func putNew(tx *state.Tx, pool *state.Pool, r *state.Reservation) error {
	if _, err := tx.Reservation(r.PoolID, r.Address); err == nil {
		return fmt.Errorf("IPAM plugin %s of CNI network %q handed out %s, which another Docker endpoint holds: "+
			"the plugin does not keep track of the addresses it gives (static gives everyone the same)", pool.IPAMType, pool.CNINetwork, r.Address)
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if err := tx.PutReservation(r); err != nil {
		return fmt.Errorf("save reservation of %s: %w", r.Address, err)
	}
	return nil
}

// checkReserved finds the address the IPAM plugin reserved: one address in
// the subnet (and the one asked for); anything else is refused (and the
// caller releases it, so that nothing leaks).
func (a *Authority) checkReserved(pool *state.Pool, subnet netip.Prefix, want netip.Addr, res *current.Result) (netip.Addr, string, error) {
	addr, gw, ok := addressIn(res, subnet)
	poolGW, _ := netip.ParseAddr(pool.Gateway)
	if why := translate.UnusableAddress(subnet, poolGW, addr); ok && why != "" {
		return netip.Addr{}, "", fmt.Errorf("CNI network %q: IPAM plugin %s handed out %s, the %s of Docker's subnet %s, which Docker cannot give a container: "+
			"keep it out of the plugin's allocation (for calico-ipam, a Calico IPReservation of %s/%d)", pool.CNINetwork, pool.IPAMType, addr, why, subnet, addr, addr.BitLen())
	}
	if ok && (!want.IsValid() || addr == want) {
		return addr, gw, nil
	}
	if ok {
		return netip.Addr{}, "", fmt.Errorf("CNI network %q: IPAM plugin %s reserved %s, not the requested %s", pool.CNINetwork, pool.IPAMType, addr, want)
	}
	return netip.Addr{}, "", fmt.Errorf("CNI network %q: IPAM plugin %s returned no address in %s (result %v)", pool.CNINetwork, pool.IPAMType, subnet, res.IPs)
}

// addressIn is the first address of a result in subnet, with its gateway.
func addressIn(res *current.Result, subnet netip.Prefix) (netip.Addr, string, bool) {
	for _, ipc := range res.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok || !subnet.Contains(a.Unmap()) {
			continue
		}
		gw := ""
		if ipc.Gateway != nil {
			gw = ipc.Gateway.String()
		}
		return a.Unmap(), gw, true
	}
	return netip.Addr{}, "", false
}

// Release releases a reservation in the CNI IPAM store. Releasing the
// gateway, or an address docker-cni does not know, does nothing.
func (a *Authority) Release(ctx context.Context, poolID string, addr netip.Addr) error {
	pool, err := a.resolve(ctx, poolID)
	if err != nil {
		a.log.WarnContext(ctx, "release in unknown pool", "pool", poolID, "address", addr, "err", err)
		return nil
	}
	if addr.String() == pool.Gateway {
		return nil
	}
	var r *state.Reservation
	err = a.store.View(func(tx *state.Tx) (err error) {
		r, err = tx.Reservation(pool.ID, addr.String())
		return err
	})
	if errors.Is(err, state.ErrNotFound) {
		r = a.storeReservation(pool, addr)
		if r == nil {
			a.log.WarnContext(ctx, "release of unknown address", "pool", pool.ID, "address", addr)
			return nil
		}
		err = nil
	}
	if err != nil {
		return err
	}
	return a.release(ctx, pool, r)
}

// storeReservation is the reservation the IPAM store shows for addr when
// docker-cni's records lost it: a host-local entry whose owner is a Docker
// endpoint's (nil otherwise).
func (a *Authority) storeReservation(pool *state.Pool, addr netip.Addr) *state.Reservation {
	owner, ifName := a.storeOwner(pool, addr)
	if !strings.HasPrefix(owner, OwnerPrefix) {
		return nil
	}
	if ifName == "" {
		ifName = reservationIfName
	}
	return &state.Reservation{PoolID: pool.ID, Address: addr.String(), OwnerID: owner, IfName: ifName}
}

func (a *Authority) release(ctx context.Context, pool *state.Pool, r *state.Reservation) error {
	args := cnirun.PluginArgs{ContainerID: r.OwnerID, IfName: r.IfName, NetNS: a.cfg.NetNS}
	if err := a.cni.PluginDel(ctx, pool.IPAMType, pool.IPAMConf, args); err != nil {
		return fmt.Errorf("release %s in CNI network %q: %w", r.Address, pool.CNINetwork, err)
	}
	if err := a.store.Update(func(tx *state.Tx) error { return tx.DeleteReservation(r.PoolID, r.Address) }); err != nil {
		return fmt.Errorf("forget reservation of %s: %w", r.Address, err)
	}
	a.log.InfoContext(ctx, "address released", "pool", pool.ID, "address", r.Address, "owner", r.OwnerID)
	return nil
}

// ReleaseAddresses releases the reservations of an endpoint's addresses
// (CIDRs) in whichever of the pools holds them, as ReleaseAddress would
// have.
func (a *Authority) ReleaseAddresses(ctx context.Context, poolIDs, cidrs []string) error {
	var errs []error
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		for _, id := range poolIDs {
			if pool, err := a.Pool(id); err == nil && pool.Subnet == p.Masked().String() {
				errs = append(errs, a.Release(ctx, id, p.Addr()))
			}
		}
	}
	return errors.Join(errs...)
}
