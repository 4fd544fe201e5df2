package state

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The buckets. Index keys join their parts with sep and end with the key
// of the record they point at, which is also their value.
const (
	bucketPools        = "pools"
	bucketNetworks     = "networks"
	bucketEndpoints    = "endpoints"
	bucketReservations = "reservations"
	bucketMeta         = "meta"
	bucketIntents      = "intents"
	// subnet, pool ID
	indexPoolsBySubnet = "pools-by-subnet"
	// network ID, endpoint ID
	indexEndpointsByNetwork = "endpoints-by-network"
	// pool ID, address
	indexReservationsByPool = "reservations-by-pool"
	// address, pool ID
	indexReservationsByAddress = "reservations-by-address"
	// protocol, host IP, port, endpoint ID
	indexPorts = "ports"
)

var (
	poolTable = table[Pool]{
		name: "pool", bucket: bucketPools,
		index: poolIndex, indexes: []string{indexPoolsBySubnet},
	}
	networkTable = table[Network]{
		name: "network", bucket: bucketNetworks,
		index: noIndex[Network],
	}
	endpointTable = table[Endpoint]{
		name: "endpoint", bucket: bucketEndpoints,
		index: endpointIndex, indexes: []string{indexEndpointsByNetwork, indexPorts},
	}
	intentTable = table[Intent]{
		name: "intent", bucket: bucketIntents,
		index: noIndex[Intent],
	}
	reservationTable = table[Reservation]{
		name: "reservation", bucket: bucketReservations,
		index: reservationIndex, indexes: []string{indexReservationsByPool, indexReservationsByAddress},
	}
)

func noIndex[T any](string, *T) ([]entry, error) { return nil, nil }

func poolIndex(key string, p *Pool) ([]entry, error) {
	k, err := indexKey(p.Subnet, key)
	if err != nil {
		return nil, err
	}
	return []entry{{indexPoolsBySubnet, k, key}}, nil
}

func reservationIndex(key string, r *Reservation) ([]entry, error) {
	byPool, err := indexKey(r.PoolID, r.Address)
	if err != nil {
		return nil, err
	}
	byAddr, err := indexKey(r.Address, r.PoolID)
	if err != nil {
		return nil, err
	}
	return []entry{{indexReservationsByPool, byPool, key}, {indexReservationsByAddress, byAddr, key}}, nil
}

func endpointIndex(key string, e *Endpoint) ([]entry, error) {
	k, err := indexKey(e.NetworkID, key)
	if err != nil {
		return nil, err
	}
	es := []entry{{indexEndpointsByNetwork, k, key}}
	ports, err := publishedPorts(e.Attachment)
	if err != nil {
		return nil, err
	}
	for _, hp := range ports {
		k, err := indexKey(hp.Proto, hp.HostIP, strconv.Itoa(hp.Port), key)
		if err != nil {
			return nil, err
		}
		es = append(es, entry{indexPorts, k, key})
	}
	return es, nil
}

// publishedPorts returns the host ports of an attachment's Published, the
// CNI portMappings capability (a JSON array of {"hostPort", "containerPort",
// "protocol", "hostIP"}). It is the one place state reads that shape.
func publishedPorts(a *Attachment) ([]HostPort, error) {
	if a == nil || len(a.Published) == 0 {
		return nil, nil
	}
	type portMapping struct {
		HostPort int    `json:"hostPort"`
		Protocol string `json:"protocol"`
		HostIP   string `json:"hostIP"`
	}
	var mappings []portMapping
	if err := json.Unmarshal(a.Published, &mappings); err != nil {
		return nil, fmt.Errorf("decode published port mappings: %w", err)
	}
	out := make([]HostPort, 0, len(mappings))
	for _, m := range mappings {
		out = append(out, HostPort{Proto: m.Protocol, HostIP: m.HostIP, Port: m.HostPort})
	}
	return out, nil
}

// parsePortKey reads a key of the ports index back.
func parsePortKey(key string) (HostPort, error) {
	parts := strings.SplitN(key, sep, 4)
	if len(parts) != 4 {
		return HostPort{}, fmt.Errorf("ports index key %q has %d parts, want 4", key, len(parts))
	}
	port, err := strconv.Atoi(parts[2])
	if err != nil {
		return HostPort{}, fmt.Errorf("ports index key %q: port: %w", key, err)
	}
	return HostPort{Proto: parts[0], HostIP: parts[1], Port: port}, nil
}
