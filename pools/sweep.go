package pools

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// OwnerPrefix starts the owner ID of every reservation docker-cni makes in
// a CNI IPAM store; pods' owners (sandbox IDs) never do.
const OwnerPrefix = "docker-"

// SweepStores releases the addresses held in host-local stores of
// docker-cni's pools under this instance's owner IDs that no reservation
// and no intent knows (another instance's entries, in a store both bind
// to, are not its to touch) (a crash of a release before intents were recorded, a state
// dir restored from a backup). Reservation files younger than minAge are
// left alone: their reservation may be in flight.
func (a *Authority) SweepStores(ctx context.Context, minAge time.Duration) error {
	pools, owners, err := a.storesAndOwners()
	if err != nil {
		return err
	}
	// A provisional pool's network was not made again (yet): the entries
	// of its running containers have no record, so its store is left
	// alone, whichever pool names it.
	seen := map[string]bool{}
	for _, p := range pools {
		if dir, err := translate.HostLocalStoreDir(p.IPAMConf); err == nil && p.Provisional {
			seen[dir] = true
		}
	}
	var errs []error
	for _, p := range pools {
		dir, err := translate.HostLocalStoreDir(p.IPAMConf)
		if err != nil || p.IPAMType != "host-local" || seen[dir] {
			continue
		}
		seen[dir] = true
		errs = append(errs, a.sweepStore(ctx, p, dir, owners, minAge))
	}
	return errors.Join(errs...)
}

// storesAndOwners lists the pools and every owner ID docker-cni knows.
func (a *Authority) storesAndOwners() ([]*state.Pool, map[string]bool, error) {
	owners := map[string]bool{}
	var pools []*state.Pool
	err := a.store.View(func(tx *state.Tx) (err error) {
		if pools, err = tx.Pools(); err != nil {
			return err
		}
		rs, err := tx.Reservations()
		for _, r := range rs {
			owners[r.OwnerID] = true
		}
		ins, ierr := tx.Intents()
		for _, in := range ins {
			owners[in.ID] = true
		}
		return errors.Join(err, ierr)
	})
	return pools, owners, err
}

func (a *Authority) sweepStore(ctx context.Context, p *state.Pool, dir string, owners map[string]bool, minAge time.Duration) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		info, err := e.Info()
		if _, perr := netip.ParseAddr(e.Name()); perr != nil || err != nil || a.now().Sub(info.ModTime()) < minAge {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		owner, ifName := translate.HostLocalOwner(b)
		if err != nil || !strings.HasPrefix(owner, a.ownerPrefix()) || owners[owner] {
			continue
		}
		if ifName == "" {
			ifName = reservationIfName
		}
		a.log.WarnContext(ctx, "releasing an address docker-cni holds but no record knows", "address", e.Name(), "owner", owner, "store", dir)
		args := cnirun.PluginArgs{ContainerID: owner, IfName: ifName, NetNS: a.cfg.NetNS}
		err = a.cni.PluginDel(ctx, p.IPAMType, p.IPAMConf, args)
		if err == nil {
			a.cfg.Counter.Add(observe.StoreEntrySwept)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
