// Package driver serves Docker's remote network driver protocol. Join runs
// the network's CNI chain (ADD) so the container gets an interface made by
// the real plugins; Leave and DeleteEndpoint run DEL with exactly the
// configuration and runtime conf ADD used.
//
// Handlers follow one shape: load state, plan (package translate), run CNI,
// persist in one transaction, and roll back what they made when a step
// fails. Pools and reservations belong to the pool authority (package
// pools). It never calls the Docker API from a handler (dockerd may hold the
// container's lock while it calls us).
package driver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Namespaces is what the driver needs to do to network namespaces itself;
// package sandbox implements it.
type Namespaces interface {
	IsNetNS(path string) bool
	Create(path string) error
	Remove(path string) error
	LinkNames(nsPath string) ([]string, error)
	// LinkNameByMAC is the name of the link with that MAC ("": none).
	LinkNameByMAC(nsPath, mac string) (string, error)
	MoveToHost(nsPath, ifName, newName, alias string) error
	DeleteHostLink(name string) error
	HostLinkExists(name string) bool
	// HostLinkIndex is the index of a host link (0: none);
	// DeleteHostLinkIndex deletes it if that index still has that name.
	HostLinkIndex(name string) int
	DeleteHostLinkIndex(name string, index int) error
	Reclaim(fromNS, mac, toNS, newName string, addrs []netip.Prefix) (bool, error)
	DefaultRoutes(nsPath string) (v4, v6 bool, err error)
	// LinkRoutes reads a link's routes: the destinations of those without
	// gateway, and the gateways of its default routes.
	LinkRoutes(nsPath, ifName string) (translate.LinkRoutes, error)
	// HostLinks lists the host's links whose names start with prefix and
	// that carry alias; Entries the names in a dir of netns.
	HostLinks(prefix, alias string) ([]string, error)
	// BridgePorts lists the interfaces attached to a host bridge.
	BridgePorts(bridge string) ([]string, error)
	Entries(dir string) ([]string, error)
	// HostPortFree reports whether a host port can be bound.
	HostPortFree(translate.PortKey) bool
}

// Runner is what the driver needs of CNI; package cnirun implements it.
type Runner interface {
	Add(ctx context.Context, list []byte, rt *libcni.RuntimeConf) (*current.Result, error)
	Del(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error
	Validate(ctx context.Context, list []byte) error
	PluginAdd(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) (*current.Result, error)
	PluginDel(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) error
	Status(ctx context.Context, list []byte) error
	Check(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error
	GC(ctx context.Context, list []byte, valid []types.GCAttachment) error
}

// Pools is what the driver needs of the pool authority; package pools
// implements it.
type Pools interface {
	Unclaimed(subnets []string) ([]*state.Pool, error)
	Claim(nw *state.Network) error
	CorrectClaims(nw *state.Network, addrs []string) error
	ReleasePool(ctx context.Context, id string) error
	ReleaseAddresses(ctx context.Context, poolIDs, cidrs []string) error
	Stale(ctx context.Context, minAge time.Duration) ([]string, error)
	RebuildPool(ctx context.Context, req pools.Request, gw netip.Addr) (*state.Pool, error)
	AdoptReservation(ctx context.Context, poolID, addr, name string) error
}

// Containers finds what the engines said of a container, without calling
// them; package engine's Watch implements it.
type Containers interface {
	Lookup(name string) (engine.Container, bool)
}

// Firewall keeps the host rules docker-cni owns; package hostfw implements it.
type Firewall interface {
	Ensure(ctx context.Context, chain string, rules []translate.AcceptRule) (bool, error)
	Remove(ctx context.Context, chain string, rules []translate.AcceptRule) error
	// RemoveTagged removes the rules of docker-cni's chains (and
	// DOCKER-USER) whose comment is tag.
	RemoveTagged(ctx context.Context, tag string) error
}

// hostNetNS is the daemon's own netns, where libnetwork leaves an interface
// it moved back out of a sandbox.
const hostNetNS = "/proc/self/ns/net"

// Config holds the facts the driver needs about the machine.
type Config struct {
	ConfDir string
	// ScratchDir holds the scratch netns of joins.
	ScratchDir string
	// DataDir is host-local's store for generated networks (it must equal
	// the pool authority's).
	DataDir string
	// K8sNamespace is the K8S_POD_NAMESPACE of containers without the
	// io.kubernetes.pod.namespace label.
	K8sNamespace string
	// DockerUserRules, when set, makes docker-cni accept traffic of bound
	// networks without a firewall plugin in dockerd's DOCKER-USER chain.
	DockerUserRules bool
	// Instance is this docker-cni's ID (state.Store.Instance): the host
	// interfaces it hands over carry it, and it sweeps only those.
	Instance string
}

// Driver is the network driver.
type Driver struct {
	cfg   Config
	store *state.Store
	pools Pools
	cni   Runner
	ns    Namespaces
	fw    Firewall
	ctrs  Containers
	// conf is the CNI conf dir, read again only when it changed.
	conf  *cniconf.Cached
	log   *slog.Logger
	now   func() time.Time
	locks keyedMutex
	// adds: a Join's ADD holds its network's for reading, GC for
	// writing (see collect).
	adds  keyedMutex
	count observe.Counter
	later func(func())
	// pubMu serialises host port choice across endpoints.
	pubMu sync.Mutex
	// checked is when each endpoint was last CHECKed (see Verify).
	checkedMu sync.Mutex
	checked   map[string]time.Time
	// cache reads libcni's cache (nil: none); rebuilder is awaited for
	// records the state does not know (nil: none).
	cache     AttachmentCache
	rebuilder Rebuilder
	// deleted remembers the endpoints Docker deleted lately: an engine may
	// still list one while it finishes the delete, and a rebuild must not
	// make its record again.
	deleted recentSet
}

// Deps are the driver's collaborators.
type Deps struct {
	Store *state.Store
	Pools Pools
	CNI   Runner
	NS    Namespaces
	// FW may be nil: no host firewall rules are kept.
	FW  Firewall
	Log *slog.Logger
	// Counter counts reconcile actions (nil: none).
	Counter observe.Counter
	// Later runs teardown work that need not hold up Docker's call (the
	// kernel takes tens of milliseconds to delete a veth pair); nil runs it
	// at once. What it does not finish (a crash) Sweep does.
	Later func(func())
	// Cache reads libcni's cache, for records lost with the state (nil:
	// none).
	Cache AttachmentCache
}

// New returns a network driver.
func New(cfg Config, deps Deps) *Driver {
	return &Driver{cfg: cfg, store: deps.Store, pools: deps.Pools, cni: deps.CNI, ns: deps.NS, fw: deps.FW, log: deps.Log, now: time.Now,
		conf: &cniconf.Cached{Dir: cfg.ConfDir}, count: counterOr(deps.Counter), later: deps.Later,
		checked: map[string]time.Time{}, cache: deps.Cache}
}

// SetContainers gives the driver the engines' container cache.
func (d *Driver) SetContainers(c Containers) { d.ctrs = c }

func (d *Driver) GetCapabilities(ctx context.Context, _ *struct{}) (*network.CapabilitiesResponse, error) {
	return &network.CapabilitiesResponse{Scope: network.LocalScope, ConnectivityScope: network.LocalScope}, nil
}

// AllocateNetwork is a swarm (global scope) call.
func (d *Driver) AllocateNetwork(ctx context.Context, req *network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return nil, errors.New("not supported: the cni driver is local scope; swarm networks cannot use it")
}

// FreeNetwork is a swarm (global scope) call.
func (d *Driver) FreeNetwork(ctx context.Context, req *network.FreeNetworkRequest) (*struct{}, error) {
	return nil, errors.New("not supported: the cni driver is local scope; swarm networks cannot use it")
}

// DiscoverNew is a cluster discovery notification; local-scope networks
// need none.
func (d *Driver) DiscoverNew(ctx context.Context, _ *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}

// DiscoverDelete is a cluster discovery notification; local-scope networks
// need none.
func (d *Driver) DiscoverDelete(ctx context.Context, _ *network.DiscoveryNotification) (*struct{}, error) {
	return nil, nil
}

// deleteHostLinkLater deletes a host interface docker-cni handed over,
// through Later: nothing waits on it, and a crash leaves it to Sweep (it
// carries the instance's alias, and no record names it any more).
// The link is named now and deleted by its index later, so that a link a
// retried Join makes under the same name meanwhile is never touched.
func (d *Driver) deleteHostLinkLater(ctx context.Context, name string) {
	if d.later == nil {
		if err := d.ns.DeleteHostLink(name); err != nil {
			d.log.WarnContext(ctx, "delete handed-over interface; the sweep retries", "link", name, "err", err)
		}
		return
	}
	index := d.ns.HostLinkIndex(name)
	if index == 0 {
		return
	}
	d.later(func() {
		if err := d.ns.DeleteHostLinkIndex(name, index); err != nil {
			d.log.WarnContext(ctx, "delete handed-over interface; the sweep retries", "link", name, "err", err)
		}
	})
}

// linkAlias marks the host interfaces this instance hands over.
func (d *Driver) linkAlias() string { return "docker-cni " + d.cfg.Instance }

// counterOr is c, or a counter that counts nothing.
func counterOr(c observe.Counter) observe.Counter {
	if c == nil {
		return observe.Nop{}
	}
	return c
}

// withEndpoint is ctx carrying the endpoint's network and container for
// every line logged with it.
func withEndpoint(ctx context.Context, ep *state.Endpoint) context.Context {
	return observe.WithLogAttrs(ctx, slog.String("network", translate.ShortID(ep.NetworkID)),
		slog.String("endpoint", translate.ShortID(ep.ID)), slog.String("container", ep.Name))
}

// network loads a network record.
func (d *Driver) network(id string) (*state.Network, error) {
	return state.Read(d.store, func(tx *state.Tx) (*state.Network, error) { return tx.Network(id) })
}

// endpoint loads an endpoint record.
func (d *Driver) endpoint(id string) (*state.Endpoint, error) {
	return state.Read(d.store, func(tx *state.Tx) (*state.Endpoint, error) { return tx.Endpoint(id) })
}

// existingEndpoint loads an endpoint; a missing one is (nil, nil), since
// teardown calls must be safe to repeat.
func (d *Driver) existingEndpoint(id string) (*state.Endpoint, error) {
	ep, err := d.endpoint(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, nil
	}
	return ep, err
}

// saveEndpoint writes an endpoint record.
func (d *Driver) saveEndpoint(ep *state.Endpoint) error {
	if err := d.store.Update(func(tx *state.Tx) error { return tx.PutEndpoint(ep) }); err != nil {
		return fmt.Errorf("save endpoint %s: %w", translate.ShortID(ep.ID), err)
	}
	return nil
}

// saveNetwork writes a network record.
func (d *Driver) saveNetwork(nw *state.Network) error {
	if err := d.store.Update(func(tx *state.Tx) error { return tx.PutNetwork(nw) }); err != nil {
		return fmt.Errorf("save network %s: %w", translate.ShortID(nw.ID), err)
	}
	return nil
}
