package pools

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/state"
)

// undoTimeout bounds the release of an unfinished reservation, which runs
// after the request that made it failed, whatever its own context.
const undoTimeout = 30 * time.Second

// intend records, under a new owner ID, that an address is about to be
// reserved in pool's IPAM store.
func (a *Authority) intend(pool *state.Pool) (*state.Intent, error) {
	in := &state.Intent{
		ID: a.ownerPrefix() + newNonce() + newNonce() + newNonce(), Kind: state.IntentReserve, PoolID: pool.ID,
		IfName: reservationIfName, IPAMType: pool.IPAMType, IPAMConf: pool.IPAMConf, Created: a.now(),
	}
	if err := a.store.Update(func(tx *state.Tx) error { return tx.PutIntent(in) }); err != nil {
		return nil, fmt.Errorf("record reservation intent in pool %s: %w", pool.ID, err)
	}
	return in, nil
}

// undo releases what an unfinished reservation may have reserved and
// forgets the intent; when the release fails, the intent stays for
// Recover to retry.
func (a *Authority) undo(ctx context.Context, in *state.Intent) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	args := cnirun.PluginArgs{ContainerID: in.ID, IfName: in.IfName, NetNS: a.cfg.NetNS}
	if err := a.cni.PluginDel(ctx, in.IPAMType, in.IPAMConf, args); err != nil {
		a.log.ErrorContext(ctx, "release unfinished reservation; retried later", "owner", in.ID, "pool", in.PoolID, "err", err)
		return
	}
	if err := a.store.Update(func(tx *state.Tx) error { return tx.DeleteIntent(in.ID) }); err != nil {
		a.log.ErrorContext(ctx, "forget reservation intent", "owner", in.ID, "err", err)
	}
}

// Recover undoes the reservations left unfinished (a crash between the
// IPAM plugin and the record, or a release that failed) older than minAge:
// at start, everything (no request is in flight); later, what no request
// in flight can still finish.
func (a *Authority) Recover(ctx context.Context, minAge time.Duration) (int, error) {
	ins, err := state.Read(a.store, (*state.Tx).Intents)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, in := range ins {
		if a.now().Sub(in.Created) < minAge {
			continue
		}
		a.log.WarnContext(ctx, "releasing an unfinished reservation", "owner", in.ID, "pool", in.PoolID, "since", in.Created)
		a.undo(ctx, in)
		if _, err := a.intent(in.ID); !errors.Is(err, state.ErrNotFound) {
			errs = append(errs, fmt.Errorf("release unfinished reservation %s: still pending", in.ID))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func (a *Authority) intent(id string) (*state.Intent, error) {
	return state.Read(a.store, func(tx *state.Tx) (*state.Intent, error) { return tx.Intent(id) })
}
