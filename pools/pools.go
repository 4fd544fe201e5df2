// Package pools is docker-cni's one authority over address pools and
// reservations, used by both drivers: it hands Docker pools carved from a
// bound CNI network's IPAM ranges (or made for a generated network),
// reserves and releases addresses by running the CNI network's own IPAM
// plugin on its own, lets CreateNetwork claim its pools, corrects claims an
// endpoint proves wrong, and says which pools are stale.
//
// Every change that spans records is one state transaction, and pool
// changes are serialised by one lock, so clash checks see every pool. It
// does not configure interfaces and never calls the Docker API.
package pools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
)

// Config holds the facts the authority needs about the machine.
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
	// Counter counts sweeps of store entries (nil: none).
	Counter observe.Counter
	// Instance is this docker-cni's ID (state.Store.Instance): the owner
	// IDs of its reservations carry it, and it sweeps only those.
	Instance string
	// HostAddresses lists the host's interface addresses (nil: none); a
	// generated pool made again from its ID takes its bridge's address in
	// the subnet as its gateway.
	HostAddresses func() []netip.Addr
}

// Runner runs one plugin on its own; package cnirun implements it.
type Runner interface {
	PluginAdd(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) (*current.Result, error)
	PluginDel(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) error
}

// Authority owns pools and reservations.
type Authority struct {
	cfg   Config
	store *state.Store
	cni   Runner
	log   *slog.Logger
	now   func() time.Time
	// mu serialises pool changes: creation (clash checks), claims, swaps
	// and release.
	mu sync.Mutex
	// rebuilder, when set, is awaited when a call names a pool the state
	// does not know.
	rebuilder Rebuilder
}

// New returns the authority over store.
func New(cfg Config, store *state.Store, cni Runner, log *slog.Logger) *Authority {
	if cfg.Counter == nil {
		cfg.Counter = observe.Nop{}
	}
	return &Authority{cfg: cfg, store: store, cni: cni, log: log, now: time.Now}
}

// SetClock replaces the clock, for tests.
func (a *Authority) SetClock(now func() time.Time) { a.now = now }

// reservationIfName is the interface name reservations are made under in the
// IPAM store; the owner ID is what identifies them.
const reservationIfName = "eth0"

// ownerPrefix starts the owner IDs of this instance's reservations.
func (a *Authority) ownerPrefix() string {
	if a.cfg.Instance == "" {
		return OwnerPrefix
	}
	return OwnerPrefix + a.cfg.Instance + "-"
}

func newNonce() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Pool returns a pool by ID.
func (a *Authority) Pool(id string) (*state.Pool, error) {
	return state.Read(a.store, func(tx *state.Tx) (*state.Pool, error) { return tx.Pool(id) })
}
