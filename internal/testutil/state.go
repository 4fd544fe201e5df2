package testutil

import (
	"strings"

	"github.com/docker-cni/docker-cni/state"
)

// State reads and writes single records of a store, one transaction each,
// for tests that look at what handlers stored.
type State struct{ S *state.Store }

func view[T any](s *state.Store, f func(*state.Tx) (T, error)) (T, error) { return state.Read(s, f) }

func (s State) Network(id string) (*state.Network, error) {
	return view(s.S, func(tx *state.Tx) (*state.Network, error) { return tx.Network(id) })
}

func (s State) Endpoint(id string) (*state.Endpoint, error) {
	return view(s.S, func(tx *state.Tx) (*state.Endpoint, error) { return tx.Endpoint(id) })
}

func (s State) Pool(id string) (*state.Pool, error) {
	return view(s.S, func(tx *state.Tx) (*state.Pool, error) { return tx.Pool(id) })
}

// Reservation finds a reservation by its key, pool ID + "|" + address.
func (s State) Reservation(key string) (*state.Reservation, error) {
	i := strings.LastIndex(key, "|")
	return view(s.S, func(tx *state.Tx) (*state.Reservation, error) { return tx.Reservation(key[:i], key[i+1:]) })
}

func (s State) Networks() ([]*state.Network, error) { return view(s.S, (*state.Tx).Networks) }

func (s State) Endpoints() ([]*state.Endpoint, error) { return view(s.S, (*state.Tx).Endpoints) }

func (s State) Pools() ([]*state.Pool, error) { return view(s.S, (*state.Tx).Pools) }

func (s State) Reservations() ([]*state.Reservation, error) {
	return view(s.S, (*state.Tx).Reservations)
}

func (s State) PutPool(p *state.Pool) error {
	return s.S.Update(func(tx *state.Tx) error { return tx.PutPool(p) })
}

func (s State) DeleteNetwork(id string) error {
	return s.S.Update(func(tx *state.Tx) error { return tx.DeleteNetwork(id) })
}
