package pools

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Rebuilder makes docker-cni's records again from the engines when a call
// names something the state does not know; the daemon implements it.
// Await returns once a rebuild that started after the call has finished,
// or when ctx or its own bound ends (the engine may be the one waiting for
// this call), and reports whether the rebuild completed.
type Rebuilder interface {
	Await(ctx context.Context) bool
}

// SetRebuilder gives the authority the daemon's rebuilder.
func (a *Authority) SetRebuilder(r Rebuilder) { a.rebuilder = r }

// RebuildPool finds or makes the pool of a network the engines have and
// docker-cni lost the records of: an unclaimed pool of the same CNI network
// on the subnet (one an IPAM call made from its ID meanwhile), else a new
// one as RequestPool would have made it, without RequestPool's clash checks
// (the network exists). gw, if valid, is the network's gateway.
func (a *Authority) RebuildPool(ctx context.Context, req Request, gw netip.Addr) (*state.Pool, error) {
	want, err := wantedSubnet(req)
	if err != nil {
		return nil, err
	}
	name := req.Options[translate.OptNetwork]
	if name == "" {
		name = translate.GeneratedName(want)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if p, err := a.unclaimedOf(name, want.String()); p != nil || err != nil {
		return p, err
	}
	p, err := a.poolFor(translate.PoolID{CNINetwork: name, Subnet: want, Generated: req.Options[translate.OptNetwork] == ""}, req.SubPool, gw)
	if err != nil {
		return nil, err
	}
	p.AddressSpace, p.Provisional = req.AddressSpace, true
	if err := a.store.Update(func(tx *state.Tx) error { return tx.PutPool(p) }); err != nil {
		return nil, fmt.Errorf("save rebuilt pool %s: %w", p.ID, err)
	}
	a.log.InfoContext(ctx, "pool rebuilt", "pool", p.ID, "cni_network", p.CNINetwork, "subnet", p.Subnet)
	return p, nil
}

// unclaimedOf is the oldest unclaimed pool of CNI network name on subnet
// (nil when there is none).
func (a *Authority) unclaimedOf(name, subnet string) (*state.Pool, error) {
	var best *state.Pool
	err := a.store.View(func(tx *state.Tx) error {
		ps, err := tx.PoolsOnSubnet(subnet)
		for _, p := range ps {
			if p.NetworkID == "" && p.CNINetwork == name && (best == nil || p.Created.Before(best.Created)) {
				best = p
			}
		}
		return err
	})
	return best, err
}

// poolFor makes (without saving) the pool a pool ID describes: bound, as
// the conf dir has the CNI network now; generated, on the subnet with the
// range rng (may be empty) and the gateway gw (if invalid: the address the
// network's bridge holds in the subnet, else the first host).
func (a *Authority) poolFor(id translate.PoolID, rng string, gw netip.Addr) (*state.Pool, error) {
	p := &state.Pool{V6: id.Subnet.Addr().Is6(), CNINetwork: id.CNINetwork, Created: a.now()}
	if !id.Generated {
		p.Bound = true
		if err := a.bindPool(p, id.Subnet); err != nil {
			return nil, err
		}
		if gw.IsValid() && p.GatewayFree {
			p.Gateway = gw.String()
		}
		p.ID = fmt.Sprintf("%s/%s/%s", p.CNINetwork, p.Subnet, newNonce())
		return p, nil
	}
	p.ID = fmt.Sprintf("%s/%s", p.CNINetwork, newNonce())
	p.Subnet, p.IPAMType, p.CNIVersion = id.Subnet.String(), "host-local", translate.DefaultCNIVersion
	if rng != "" {
		r, err := ipRange(rng, id.Subnet)
		if err != nil {
			return nil, err
		}
		p.Range = r.String()
	}
	if !gw.IsValid() {
		gw = a.hostAddressIn(id.Subnet)
	}
	return p, a.setGeneratedIPAM(p, gw)
}

// hostAddressIn is the address a host interface (a generated network's
// bridge) holds in subnet, else the subnet's first host.
func (a *Authority) hostAddressIn(subnet netip.Prefix) netip.Addr {
	if a.cfg.HostAddresses != nil {
		for _, addr := range a.cfg.HostAddresses() {
			if subnet.Contains(addr) {
				return addr
			}
		}
	}
	return translate.FirstHost(subnet)
}

// resolve finds the pool a Docker IPAM call names. A pool ID the state does
// not know (its records were lost) is read for what it says of itself: a
// rebuilt pool of that CNI network and subnet takes the ID Docker knows;
// failing that, once a rebuild was awaited, the pool is made from its ID
// alone.
func (a *Authority) resolve(ctx context.Context, id string) (*state.Pool, error) {
	p, err := a.Pool(id)
	if !errors.Is(err, state.ErrNotFound) {
		return p, err
	}
	desc, ok := translate.ParsePoolID(id)
	if !ok {
		return nil, fmt.Errorf("pool %s is unknown to docker-cni, and its ID is not one docker-cni makes", id)
	}
	if p, err := a.adopt(id, desc); p != nil || err != nil {
		return p, err
	}
	if a.rebuilder != nil && a.rebuilder.Await(ctx) {
		if p, err := a.adopt(id, desc); p != nil || err != nil {
			return p, err
		}
	}
	return a.fromID(ctx, id, desc)
}

// adopt gives a provisional (rebuilt) pool of the described CNI network and
// subnet the ID Docker knows, in one transaction with the records that
// name it (nil when there is none).
func (a *Authority) adopt(id string, desc translate.PoolID) (*state.Pool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var adopted *state.Pool
	err := a.store.Update(func(tx *state.Tx) error {
		if p, err := tx.Pool(id); err == nil {
			adopted = p
			return nil
		}
		ps, err := tx.PoolsOnSubnet(desc.Subnet.String())
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Provisional && p.CNINetwork == desc.CNINetwork && (adopted == nil || p.Created.Before(adopted.Created)) {
				adopted = p
			}
		}
		if adopted == nil || adopted.ID == id {
			return nil
		}
		return rekeyPool(tx, adopted, id)
	})
	return adopted, err
}

// rekeyPool moves pool p to the ID newID, with its reservations and its
// network's claim.
func rekeyPool(tx *state.Tx, p *state.Pool, newID string) error {
	old := p.ID
	rs, err := tx.ReservationsIn(old)
	if err != nil {
		return err
	}
	if err := tx.DeletePool(old); err != nil {
		return err
	}
	p.ID, p.Provisional = newID, false
	if err := tx.PutPool(p); err != nil {
		return err
	}
	for _, r := range rs {
		if err := tx.DeleteReservation(old, r.Address); err != nil {
			return err
		}
		r.PoolID = newID
		if err := tx.PutReservation(r); err != nil {
			return err
		}
	}
	if p.NetworkID == "" {
		return nil
	}
	nw, err := tx.Network(p.NetworkID)
	if err != nil {
		return err
	}
	for i, pid := range nw.PoolIDs {
		if pid == old {
			nw.PoolIDs[i] = newID
		}
	}
	return tx.PutNetwork(nw)
}

// fromID makes and records the pool an ID describes, unclaimed: a network
// rebuilt later claims it.
func (a *Authority) fromID(ctx context.Context, id string, desc translate.PoolID) (*state.Pool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p, err := a.poolFor(desc, "", netip.Addr{})
	if err != nil {
		return nil, fmt.Errorf("pool %s is unknown to docker-cni (its records were lost) and cannot be made again from its ID: %w", id, err)
	}
	p.ID, p.AddressSpace = id, "CniLocal"
	if err := a.store.Update(func(tx *state.Tx) error { return tx.PutPool(p) }); err != nil {
		return nil, fmt.Errorf("save pool %s: %w", id, err)
	}
	a.log.WarnContext(ctx, "pool made again from its ID: its records were lost", "pool", id, "cni_network", p.CNINetwork, "subnet", p.Subnet)
	return p, nil
}

// AdoptReservation records that a running container holds addr (a CIDR)
// in pool poolID, as the IPAM store shows it: the store's docker-cni owner
// becomes the reservation's; an address the store no longer holds (a
// generated network's store lost with the state dir) is reserved again,
// so that no one else gets it. An address held by anyone else (a pod) is
// an error: two holders, which docker-cni cannot mend.
func (a *Authority) AdoptReservation(ctx context.Context, poolID, addr, name string) error {
	pfx, err := netip.ParsePrefix(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	pool, err := a.resolve(ctx, poolID)
	if err != nil {
		return err
	}
	held, err := state.Read(a.store, func(tx *state.Tx) (bool, error) {
		_, err := tx.Reservation(pool.ID, pfx.Addr().String())
		if errors.Is(err, state.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if held || err != nil || pfx.Addr().String() == pool.Gateway {
		return err
	}
	owner, ifName := a.storeOwner(pool, pfx.Addr())
	switch {
	case owner == "":
		_, err := a.Reserve(ctx, pool.ID, pfx.Addr(), name)
		return err
	case !strings.HasPrefix(owner, OwnerPrefix):
		return fmt.Errorf("address %s of container %s is held by %s in CNI network %q: two holders of one address", pfx.Addr(), name, owner, pool.CNINetwork)
	}
	if ifName == "" {
		ifName = reservationIfName
	}
	r := &state.Reservation{PoolID: pool.ID, Address: pfx.Addr().String(), OwnerID: owner, IfName: ifName, Name: name, Created: a.now()}
	if err := a.store.Update(func(tx *state.Tx) error { return tx.PutReservation(r) }); err != nil {
		return fmt.Errorf("save reservation of %s: %w", r.Address, err)
	}
	a.log.InfoContext(ctx, "reservation rebuilt from the IPAM store", "pool", pool.ID, "address", r.Address, "owner", owner)
	return nil
}

// storeOwner reads who holds addr in a host-local pool's store ("" when no
// one does, or the store is not host-local's).
func (a *Authority) storeOwner(pool *state.Pool, addr netip.Addr) (owner, ifName string) {
	if pool.IPAMType != "host-local" {
		return "", ""
	}
	dir, err := translate.HostLocalStoreDir(pool.IPAMConf)
	if err != nil {
		return "", ""
	}
	b, err := os.ReadFile(filepath.Join(dir, addr.String()))
	if err != nil {
		return "", ""
	}
	return translate.HostLocalOwner(b)
}

// removeGeneratedStore removes the host-local store dir of a generated
// pool once no pool of its CNI network is left and it holds no address
// (only host-local's lock and last_reserved_ip files), so that a removed
// network leaves nothing in the state dir.
func (a *Authority) removeGeneratedStore(ctx context.Context, p *state.Pool) {
	if p.Bound || p.IPAMType != "host-local" {
		return
	}
	others, err := a.list()
	if err != nil {
		return
	}
	for _, o := range others {
		if o.CNINetwork == p.CNINetwork {
			return
		}
	}
	dir, err := translate.HostLocalStoreDir(p.IPAMConf)
	if err != nil || filepath.Dir(dir) != filepath.Clean(a.cfg.DataDir) {
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip.") {
			a.log.WarnContext(ctx, "keeping the store of a released pool: it still holds entries", "store", dir, "entry", e.Name())
			return
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		a.log.WarnContext(ctx, "remove the store of a released pool", "store", dir, "err", err)
	}
}
