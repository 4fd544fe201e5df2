package state

import (
	"fmt"
	"strings"
)

// Tx is one transaction, valid only inside the function given to View or
// Update. Getters return an error wrapping ErrNotFound for a missing
// record; lists are in key order; deleting a missing record is not an
// error. Records are copies: changing one changes nothing stored until it
// is put. Put replaces the record and keeps every index exact.
type Tx struct{ kv kv }

// Pool returns the pool id.
func (tx *Tx) Pool(id string) (*Pool, error) { return poolTable.get(tx.kv, id) }

// Pools returns every pool.
func (tx *Tx) Pools() ([]*Pool, error) { return poolTable.list(tx.kv) }

// PoolsOnSubnet returns the pools whose Subnet is subnet, as stored.
func (tx *Tx) PoolsOnSubnet(subnet string) ([]*Pool, error) {
	return poolTable.lookup(tx.kv, indexPoolsBySubnet, subnet)
}

// PutPool stores p under p.ID.
func (tx *Tx) PutPool(p *Pool) error { return poolTable.put(tx.kv, p.ID, p) }

// DeletePool removes the pool id.
func (tx *Tx) DeletePool(id string) error { return poolTable.delete(tx.kv, id) }

// Network returns the network id.
func (tx *Tx) Network(id string) (*Network, error) { return networkTable.get(tx.kv, id) }

// Networks returns every network.
func (tx *Tx) Networks() ([]*Network, error) { return networkTable.list(tx.kv) }

// PutNetwork stores n under n.ID.
func (tx *Tx) PutNetwork(n *Network) error { return networkTable.put(tx.kv, n.ID, n) }

// DeleteNetwork removes the network id.
func (tx *Tx) DeleteNetwork(id string) error { return networkTable.delete(tx.kv, id) }

// Endpoint returns the endpoint id.
func (tx *Tx) Endpoint(id string) (*Endpoint, error) { return endpointTable.get(tx.kv, id) }

// Endpoints returns every endpoint.
func (tx *Tx) Endpoints() ([]*Endpoint, error) { return endpointTable.list(tx.kv) }

// EndpointsOf returns the endpoints whose NetworkID is networkID.
func (tx *Tx) EndpointsOf(networkID string) ([]*Endpoint, error) {
	return endpointTable.lookup(tx.kv, indexEndpointsByNetwork, networkID)
}

// PutEndpoint stores e under e.ID. It fails if e's attachment has a
// Published that is not a JSON array of port mappings.
func (tx *Tx) PutEndpoint(e *Endpoint) error { return endpointTable.put(tx.kv, e.ID, e) }

// DeleteEndpoint removes the endpoint id.
func (tx *Tx) DeleteEndpoint(id string) error { return endpointTable.delete(tx.kv, id) }

// PublishedPorts returns every host port published by an endpoint's
// attachment, with the endpoint's ID, from the ports index alone. Should
// two endpoints publish the same port, the one with the greater ID is
// given.
func (tx *Tx) PublishedPorts() (map[HostPort]string, error) {
	out := map[HostPort]string{}
	err := tx.kv.scan(indexPorts, "", func(key string, id []byte) error {
		hp, err := parsePortKey(key)
		if err != nil {
			return err
		}
		out[hp] = string(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Reservation returns the reservation of addr (a plain address, such as
// "10.1.0.5") in the pool poolID.
func (tx *Tx) Reservation(poolID, addr string) (*Reservation, error) {
	return reservationTable.get(tx.kv, reservationKey(poolID, addr))
}

// Reservations returns every reservation.
func (tx *Tx) Reservations() ([]*Reservation, error) { return reservationTable.list(tx.kv) }

// ReservationsIn returns the reservations of the pool poolID.
func (tx *Tx) ReservationsIn(poolID string) ([]*Reservation, error) {
	return reservationTable.lookup(tx.kv, indexReservationsByPool, poolID)
}

// ReservationsAt returns the reservations of addr, in every pool.
func (tx *Tx) ReservationsAt(addr string) ([]*Reservation, error) {
	return reservationTable.lookup(tx.kv, indexReservationsByAddress, addr)
}

// PutReservation sets r.Key to r.PoolID+"|"+r.Address and stores r under
// it. The address must not hold a '|', which keeps keys unambiguous.
func (tx *Tx) PutReservation(r *Reservation) error {
	if strings.Contains(r.Address, "|") {
		return fmt.Errorf("put reservation in pool %q: address %q holds a '|'", r.PoolID, r.Address)
	}
	r.Key = reservationKey(r.PoolID, r.Address)
	return reservationTable.put(tx.kv, r.Key, r)
}

// DeleteReservation removes the reservation of addr in the pool poolID.
func (tx *Tx) DeleteReservation(poolID, addr string) error {
	return reservationTable.delete(tx.kv, reservationKey(poolID, addr))
}

func reservationKey(poolID, addr string) string { return poolID + "|" + addr }

// Intent returns the intent id.
func (tx *Tx) Intent(id string) (*Intent, error) { return intentTable.get(tx.kv, id) }

// Intents returns every intent.
func (tx *Tx) Intents() ([]*Intent, error) { return intentTable.list(tx.kv) }

// PutIntent stores i under i.ID.
func (tx *Tx) PutIntent(i *Intent) error { return intentTable.put(tx.kv, i.ID, i) }

// DeleteIntent removes the intent id.
func (tx *Tx) DeleteIntent(id string) error { return intentTable.delete(tx.kv, id) }
