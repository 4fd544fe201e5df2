// Package state keeps what docker-cni must remember across restarts: address
// pools, networks, endpoints with their CNI attachments, and IPAM
// reservations.
//
// Records are stored as their JSON encoding in one bbolt database,
// state.db in the state dir, next to indexes (pools by subnet, endpoints by
// network, reservations by pool and by address, published host ports) that
// every write keeps exact in the same transaction. Work is done in View and
// Update transactions: an Update commits all of its writes, durably, or
// none. NewMemory is the same store kept in memory, for handler tests.
//
// The package stores what it is given. It must not know Docker or CNI
// semantics beyond the one decode of an attachment's published port
// mappings that the ports index needs; it does not log and does not touch
// the network.
package state
