// Package observe is all that instrumented packages see of docker-cni's
// metrics and request logging: the names of reconcile actions and a
// one-method Counter for them, a per-request clock of plugin exec time
// carried in the context, and log attributes carried in the context.
//
// It has no dependencies beyond the standard library, so driver/, pools/,
// server/ and cnirun/ can import it without pulling in Prometheus; package
// metrics implements the interfaces. It must not export metrics itself.
package observe

import (
	"context"
	"sync/atomic"
	"time"
)

// Counter counts reconcile actions by kind (one of the Kind constants);
// package metrics implements it. Nop is the default.
type Counter interface {
	Add(kind string)
}

// Nop counts nothing.
type Nop struct{}

func (Nop) Add(string) {}

var _ Counter = Nop{}

// Reconcile actions: what a reconcile pass (or a sweep) did.
const (
	// NetworkDropped: a network Docker removed while docker-cni was down
	// was torn down.
	NetworkDropped = "network_dropped"
	// EndpointDropped: an endpoint Docker dropped without Leave and
	// DeleteEndpoint was torn down.
	EndpointDropped = "endpoint_dropped"
	// LeftoverRetried: a left-over endpoint's teardown was tried again.
	LeftoverRetried = "leftover_retried"
	// PoolReleased: a pool no network claims was released.
	PoolReleased = "pool_released"
	// ReservationUndone: a reservation intent left unfinished (a crash, a
	// failed release) was undone.
	ReservationUndone = "reservation_undone"
	// LinkSwept, NetNSSwept, StoreEntrySwept: a dcni* link, a scratch netns
	// or a docker-* entry of a host-local store that no record knows was
	// removed.
	LinkSwept       = "link_swept"
	NetNSSwept      = "netns_swept"
	StoreEntrySwept = "store_entry_swept"
	// ContainerRestarted: a restart-policy container an engine gave up on
	// was started.
	ContainerRestarted = "container_restarted"
	// CheckFailed: CNI CHECK of a live attachment failed.
	CheckFailed = "check_failed"
	// NetworkCollected: CNI GC ran over a network docker-cni owns whole.
	NetworkCollected = "network_collected"
)

// Kinds lists every reconcile action, in the order above.
var Kinds = []string{NetworkDropped, EndpointDropped, LeftoverRetried, PoolReleased, ReservationUndone,
	LinkSwept, NetNSSwept, StoreEntrySwept, ContainerRestarted, CheckFailed, NetworkCollected}

// Leak reports whether an action of kind means a leak was found: something
// docker-cni made that no record knew of any more, left by a crash or a
// failed release.
func Leak(kind string) bool {
	switch kind {
	case ReservationUndone, LinkSwept, NetNSSwept, StoreEntrySwept:
		return true
	}
	return false
}

// ExecClock adds up the time spent executing CNI plugins on behalf of one
// request. It is safe for concurrent use.
type ExecClock struct {
	ns   atomic.Int64
	runs atomic.Int64
}

type clockKey struct{}

// WithExecClock returns a context that carries a new clock, and the clock.
// Every plugin exec made with the context (or one derived from it) adds to
// the clock.
func WithExecClock(ctx context.Context) (context.Context, *ExecClock) {
	c := &ExecClock{}
	return context.WithValue(ctx, clockKey{}, c), c
}

// AddExec adds one plugin exec of duration d to the clock ctx carries, if
// any.
func AddExec(ctx context.Context, d time.Duration) {
	if c, ok := ctx.Value(clockKey{}).(*ExecClock); ok {
		c.ns.Add(int64(d))
		c.runs.Add(1)
	}
}

// Total is the time the request's plugin execs took, added up.
func (c *ExecClock) Total() time.Duration { return time.Duration(c.ns.Load()) }

// Runs is how many plugin execs the request made.
func (c *ExecClock) Runs() int { return int(c.runs.Load()) }
