package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnirun"
)

// Op names a cnirun.Runner method.
type Op string

// The operations of cnirun.Runner.
const (
	OpAdd       Op = "ADD"
	OpDel       Op = "DEL"
	OpValidate  Op = "VALIDATE"
	OpPluginAdd Op = "PLUGIN ADD"
	OpPluginDel Op = "PLUGIN DEL"
	OpStatus    Op = "STATUS"
	OpCheck     Op = "CHECK"
	OpGC        Op = "GC"
)

// Call is one recorded Runner call.
type Call struct {
	Op Op
	// Conf is the conflist of Add, Del and Validate, or the network
	// configuration of PluginAdd and PluginDel.
	Conf []byte
	// PluginType is the plugin PluginAdd or PluginDel ran.
	PluginType string
	// RT is the runtime configuration of Add and Del.
	RT libcni.RuntimeConf
	// Args are the CNI_* arguments of PluginAdd and PluginDel.
	Args cnirun.PluginArgs
	// Valid are the valid attachments of GC.
	Valid []types.GCAttachment
}

// Owner is what host-local records an address under.
type Owner struct {
	ContainerID string
	IfName      string
}

// Runner is a fake cnirun.Runner. It records every call and, instead of
// running plugins, models what the reference plugins do:
//
//   - host-local (run on its own or as a chain's IPAM) allocates addresses
//     the way the real one does: per network name, round robin from the
//     last reserved address, skipping the gateway, honouring rangeStart,
//     rangeEnd and args.cni.ips, refusing a second address for the same
//     owner, and releasing by owner on DEL;
//   - static IPAM configures exactly the addresses it is given;
//   - a chain's ADD makes the container's link (named rt.IfName, with the
//     MAC of the "mac" capability arg or a made-up one) in rt.NetNS of NS,
//     and its DEL removes it, when NS is set;
//   - Status, Check and GC only record the call (and fail when told);
//   - Validate refuses a list whose version a plugin of it, or the IPAM
//     plugin it delegates to, does not support (SetVersions; every plugin
//     supports every version unless told).
//
// Calls can be made to fail (Fail, FailNext) or to answer a given result
// (SetResult). A failing call does nothing; a call with a set result does
// its usual work and then answers the set result, as a misbehaving plugin
// would.
type Runner struct {
	// NS, when set, is the namespace model chain ADD and DEL act on.
	NS *Namespaces
	// OnCall, when set, is called at the start of every call, outside the
	// runner's lock: a test can look at the world as the plugin would.
	OnCall func(Call)

	mu       sync.Mutex
	calls    []Call
	fail     map[Op]error
	failNext map[Op][]error
	results  map[Op]*current.Result
	stores   map[string]*ipamStore
	versions map[string][]string
	macs     int
}

var _ cnirun.Runner = (*Runner)(nil)

// NewRunner returns a Runner acting on ns (which may be nil).
func NewRunner(ns *Namespaces) *Runner {
	return &Runner{
		NS:       ns,
		fail:     map[Op]error{},
		failNext: map[Op][]error{},
		results:  map[Op]*current.Result{},
		stores:   map[string]*ipamStore{},
		versions: map[string][]string{},
	}
}

// SetVersions makes pluginType support only the given CNI versions in
// Validate, as the reference firewall plugin supports only 0.4.0 and newer.
func (r *Runner) SetVersions(pluginType string, versions ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.versions[pluginType] = versions
}

// Fail makes every later call of op fail with err; nil clears it.
func (r *Runner) Fail(op Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.fail, op)
		return
	}
	r.fail[op] = err
}

// FailNext makes the next call of op fail with err (queued after any
// failure already set with FailNext).
func (r *Runner) FailNext(op Op, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[op] = append(r.failNext[op], err)
}

// SetResult makes later calls of op (OpAdd or OpPluginAdd) answer res
// after doing their work; nil restores the modelled result.
func (r *Runner) SetResult(op Op, res *current.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if res == nil {
		delete(r.results, op)
		return
	}
	r.results[op] = res
}

// Calls returns the recorded calls of the given operations (all when none
// is given), in order.
func (r *Runner) Calls(ops ...Op) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if len(ops) == 0 || slices.Contains(ops, c.Op) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (r *Runner) ResetCalls() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// Reserved returns the addresses reserved in the host-local store of the
// CNI network name, with their owners.
func (r *Runner) Reserved(name string) map[netip.Addr]Owner {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[netip.Addr]Owner{}
	if s := r.stores[name]; s != nil {
		for a, o := range s.owners {
			out[a] = o
		}
	}
	return out
}

// begin records a call and returns the failure to answer with.
func (r *Runner) begin(c Call) error {
	if r.OnCall != nil {
		r.OnCall(c)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	if q := r.failNext[c.Op]; len(q) > 0 {
		r.failNext[c.Op] = q[1:]
		return q[0]
	}
	return r.fail[c.Op]
}

func copyRT(rt *libcni.RuntimeConf) libcni.RuntimeConf {
	if rt == nil {
		return libcni.RuntimeConf{}
	}
	c := *rt
	c.Args = slices.Clone(rt.Args)
	return c
}

// netConf is the part of a network configuration the fake reads.
type netConf struct {
	CNIVersion string          `json:"cniVersion"`
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Bridge     string          `json:"bridge"`
	IPAM       json.RawMessage `json:"ipam"`
	Args       struct {
		CNI struct {
			IPs []string `json:"ips"`
		} `json:"cni"`
	} `json:"args"`
}

type ipamConf struct {
	Type       string          `json:"type"`
	Ranges     [][]rangeConf   `json:"ranges"`
	Subnet     string          `json:"subnet"`
	RangeStart string          `json:"rangeStart"`
	RangeEnd   string          `json:"rangeEnd"`
	Gateway    string          `json:"gateway"`
	Routes     []types.Route   `json:"routes"`
	Addresses  []staticAddress `json:"addresses"`
}

type rangeConf struct {
	Subnet     string `json:"subnet"`
	RangeStart string `json:"rangeStart"`
	RangeEnd   string `json:"rangeEnd"`
	Gateway    string `json:"gateway"`
}

type staticAddress struct {
	Address string `json:"address"`
	Gateway string `json:"gateway"`
}

type conflist struct {
	CNIVersion string    `json:"cniVersion"`
	Name       string    `json:"name"`
	Plugins    []netConf `json:"plugins"`
}

func (r *Runner) Add(ctx context.Context, list []byte, rt *libcni.RuntimeConf) (*current.Result, error) {
	if err := r.begin(Call{Op: OpAdd, Conf: slices.Clone(list), RT: copyRT(rt)}); err != nil {
		return nil, err
	}
	var cl conflist
	if err := json.Unmarshal(list, &cl); err != nil {
		return nil, fmt.Errorf("fake runner: decode conflist: %w", err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	bridge := "fakebr0"
	for _, p := range cl.Plugins {
		if p.Bridge != "" {
			bridge = p.Bridge
		}
	}
	mac, _ := rt.CapabilityArgs["mac"].(string)
	r.mu.Lock()
	if mac == "" {
		r.macs++
		mac = fmt.Sprintf("02:fa:ce:00:%02x:%02x", r.macs>>8&0xff, r.macs&0xff)
	}
	r.mu.Unlock()
	res.Interfaces = []*current.Interface{
		{Name: bridge},
		{Name: "veth" + shortID(rt.ContainerID)},
		{Name: rt.IfName, Mac: mac, Sandbox: rt.NetNS},
	}
	for _, p := range cl.Plugins {
		if len(p.IPAM) == 0 {
			continue
		}
		ips, routes, err := r.ipamAdd(cl.Name, p.IPAM, p.Args.CNI.IPs, Owner{rt.ContainerID, rt.IfName})
		if err != nil {
			return nil, err
		}
		for _, ipc := range ips {
			ipc.Interface = current.Int(2)
		}
		res.IPs, res.Routes = ips, routes
		break
	}
	link := Link{Name: rt.IfName, MAC: mac}
	for _, ipc := range res.IPs {
		a, _ := netip.AddrFromSlice(ipc.Address.IP)
		ones, _ := ipc.Address.Mask.Size()
		link.Addrs = append(link.Addrs, netip.PrefixFrom(a.Unmap(), ones))
	}
	for _, route := range res.Routes {
		if ones, _ := route.Dst.Mask.Size(); ones == 0 {
			if route.Dst.IP.To4() != nil {
				link.DefaultV4 = true
			} else {
				link.DefaultV6 = true
			}
		}
	}
	if r.NS != nil {
		if err := r.NS.addChainLink(rt.NetNS, link); err != nil {
			r.ipamDel(cl.Name, cl.Plugins, Owner{rt.ContainerID, rt.IfName})
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set := r.results[OpAdd]; set != nil {
		return set, nil
	}
	return res, nil
}

func (r *Runner) Del(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error {
	if err := r.begin(Call{Op: OpDel, Conf: slices.Clone(list), RT: copyRT(rt)}); err != nil {
		return err
	}
	var cl conflist
	if err := json.Unmarshal(list, &cl); err != nil {
		return fmt.Errorf("fake runner: decode conflist: %w", err)
	}
	if r.NS != nil && rt.NetNS != "" {
		r.NS.delChainLink(rt.NetNS, rt.IfName)
	}
	r.ipamDel(cl.Name, cl.Plugins, Owner{rt.ContainerID, rt.IfName})
	return nil
}

func (r *Runner) Validate(ctx context.Context, list []byte) error {
	if err := r.begin(Call{Op: OpValidate, Conf: slices.Clone(list)}); err != nil {
		return err
	}
	var cl conflist
	if err := json.Unmarshal(list, &cl); err != nil {
		return fmt.Errorf("fake runner: decode conflist: %w", err)
	}
	var plugins []string
	for _, p := range cl.Plugins {
		plugins = append(plugins, p.Type)
		var ic ipamConf
		if len(p.IPAM) > 0 && json.Unmarshal(p.IPAM, &ic) == nil && ic.Type != "" {
			plugins = append(plugins, ic.Type)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range plugins {
		if vs, ok := r.versions[t]; ok && !slices.Contains(vs, cl.CNIVersion) {
			return &cnirun.VersionError{Plugin: t, Path: "/fake/bin/" + t, Version: cl.CNIVersion, Supported: slices.Clone(vs)}
		}
	}
	return nil
}

func (r *Runner) PluginAdd(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) (*current.Result, error) {
	if err := r.begin(Call{Op: OpPluginAdd, Conf: slices.Clone(netconf), PluginType: pluginType, Args: a}); err != nil {
		return nil, err
	}
	var nc netConf
	if err := json.Unmarshal(netconf, &nc); err != nil {
		return nil, fmt.Errorf("fake runner: decode network configuration: %w", err)
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion}
	if pluginType == "host-local" || pluginType == "static" {
		ips, routes, err := r.ipamAdd(nc.Name, nc.IPAM, nc.Args.CNI.IPs, Owner{a.ContainerID, a.IfName})
		if err != nil {
			return nil, err
		}
		res.IPs, res.Routes = ips, routes
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if set := r.results[OpPluginAdd]; set != nil {
		return set, nil
	}
	return res, nil
}

func (r *Runner) PluginDel(ctx context.Context, pluginType string, netconf []byte, a cnirun.PluginArgs) error {
	if err := r.begin(Call{Op: OpPluginDel, Conf: slices.Clone(netconf), PluginType: pluginType, Args: a}); err != nil {
		return err
	}
	var nc netConf
	if err := json.Unmarshal(netconf, &nc); err != nil {
		return fmt.Errorf("fake runner: decode network configuration: %w", err)
	}
	if pluginType == "host-local" {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.store(nc.Name).release(Owner{a.ContainerID, a.IfName})
	}
	return nil
}

// ipamAdd runs the IPAM section of network name for owner.
func (r *Runner) ipamAdd(name string, raw json.RawMessage, requested []string, owner Owner) ([]*current.IPConfig, []*types.Route, error) {
	var ic ipamConf
	if err := json.Unmarshal(raw, &ic); err != nil {
		return nil, nil, fmt.Errorf("fake runner: decode ipam: %w", err)
	}
	var routes []*types.Route
	for _, route := range ic.Routes {
		routes = append(routes, &route)
	}
	switch ic.Type {
	case "static":
		var ips []*current.IPConfig
		for _, a := range ic.Addresses {
			ip, ipn, err := net.ParseCIDR(a.Address)
			if err != nil {
				return nil, nil, fmt.Errorf("static: address %q: %w", a.Address, err)
			}
			ipc := &current.IPConfig{Address: net.IPNet{IP: ip, Mask: ipn.Mask}}
			if a.Gateway != "" {
				ipc.Gateway = net.ParseIP(a.Gateway)
			}
			ips = append(ips, ipc)
		}
		return ips, routes, nil
	case "host-local":
		// As host-local: the single-range form first, then "ranges".
		sets := ic.Ranges
		if ic.Subnet != "" {
			sets = append([][]rangeConf{{{Subnet: ic.Subnet, RangeStart: ic.RangeStart, RangeEnd: ic.RangeEnd, Gateway: ic.Gateway}}}, sets...)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		ips, err := r.store(name).allocate(sets, requested, owner)
		if err != nil {
			return nil, nil, err
		}
		return ips, routes, nil
	default:
		return nil, nil, fmt.Errorf("fake runner: IPAM type %q is not modelled", ic.Type)
	}
}

// ipamDel releases owner's addresses if the chain's IPAM is host-local.
func (r *Runner) ipamDel(name string, plugins []netConf, owner Owner) {
	for _, p := range plugins {
		if len(p.IPAM) == 0 {
			continue
		}
		var ic ipamConf
		if json.Unmarshal(p.IPAM, &ic) == nil && ic.Type == "host-local" {
			r.mu.Lock()
			r.store(name).release(owner)
			r.mu.Unlock()
		}
		return
	}
}

// store returns the host-local store of network name; r.mu must be held.
func (r *Runner) store(name string) *ipamStore {
	s := r.stores[name]
	if s == nil {
		s = &ipamStore{owners: map[netip.Addr]Owner{}, last: map[int]netip.Addr{}}
		r.stores[name] = s
	}
	return s
}

// ipamStore is host-local's store of one network.
type ipamStore struct {
	owners map[netip.Addr]Owner
	// last is the last reserved address per range set.
	last map[int]netip.Addr
}

// hlRange is a canonicalized host-local range.
type hlRange struct {
	subnet         netip.Prefix
	start, end, gw netip.Addr
}

func (h hlRange) contains(a netip.Addr) bool {
	return h.subnet.Contains(a) && a.Compare(h.start) >= 0 && a.Compare(h.end) <= 0
}

// canonicalize fills a range's defaults as host-local does: gateway and
// start at the first address after the network address, end at the last
// address (IPv4: before the broadcast address).
func canonicalize(rc rangeConf) (hlRange, error) {
	p, err := netip.ParsePrefix(rc.Subnet)
	if err != nil {
		return hlRange{}, fmt.Errorf("invalid CIDR %s: %w", rc.Subnet, err)
	}
	p = p.Masked()
	if p.Bits() > p.Addr().BitLen()-2 {
		return hlRange{}, fmt.Errorf("Network %s too small to allocate from", p)
	}
	h := hlRange{subnet: p}
	parse := func(s string, def netip.Addr) (netip.Addr, error) {
		if s == "" {
			return def, nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Addr{}, err
		}
		if !p.Contains(a) {
			return netip.Addr{}, fmt.Errorf("%s not in network %s", a, p)
		}
		return a, nil
	}
	if h.gw, err = parse(rc.Gateway, p.Addr().Next()); err != nil {
		return hlRange{}, err
	}
	if h.start, err = parse(rc.RangeStart, p.Addr().Next()); err != nil {
		return hlRange{}, err
	}
	last := lastAddr(p)
	if p.Addr().Is4() {
		last = last.Prev()
	}
	if h.end, err = parse(rc.RangeEnd, last); err != nil {
		return hlRange{}, err
	}
	return h, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= p.Bits() {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// allocate gives owner one address per range set, requested ones first.
func (s *ipamStore) allocate(sets [][]rangeConf, requested []string, owner Owner) ([]*current.IPConfig, error) {
	var canon [][]hlRange
	for _, set := range sets {
		var rs []hlRange
		for _, rc := range set {
			h, err := canonicalize(rc)
			if err != nil {
				return nil, err
			}
			rs = append(rs, h)
		}
		canon = append(canon, rs)
	}
	if len(canon) == 0 {
		return nil, errors.New("host-local: no IP ranges specified")
	}
	want := map[int]netip.Addr{}
	for _, s := range requested {
		a, err := netip.ParseAddr(s)
		if err != nil {
			if p, perr := netip.ParsePrefix(s); perr == nil {
				a, err = p.Addr(), nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("invalid IP %q", s)
		}
		found := false
		for i, set := range canon {
			if _, ok := want[i]; ok {
				continue
			}
			for _, h := range set {
				if h.contains(a) {
					want[i], found = a, true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("requested IP address %s is not available in any range set", a)
		}
	}
	var out []*current.IPConfig
	var got []netip.Addr
	for i, set := range canon {
		a, h, err := s.allocateIn(i, set, want[i], owner)
		if err != nil {
			for _, g := range got {
				delete(s.owners, g)
			}
			return nil, err
		}
		got = append(got, a)
		out = append(out, &current.IPConfig{
			Address: net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(h.subnet.Bits(), a.BitLen())},
			Gateway: h.gw.AsSlice(),
		})
	}
	return out, nil
}

func (s *ipamStore) allocateIn(setIdx int, set []hlRange, want netip.Addr, owner Owner) (netip.Addr, hlRange, error) {
	if want.IsValid() {
		for _, h := range set {
			if !h.contains(want) {
				continue
			}
			if want == h.gw {
				return netip.Addr{}, h, fmt.Errorf("requested ip %s is subnet's gateway", want)
			}
			if _, taken := s.owners[want]; taken {
				return netip.Addr{}, h, fmt.Errorf("requested IP address %s is not available in range set %s", want, rangeSetString(set))
			}
			s.owners[want] = owner
			return want, h, nil
		}
	}
	for a, o := range s.owners {
		if o == owner && inSet(set, a) {
			return netip.Addr{}, hlRange{}, fmt.Errorf("%s has been allocated to %s, duplicate allocation is not allowed", a, owner.ContainerID)
		}
	}
	// Round robin from the last reserved address, as host-local's RangeIter.
	idx, cur := 0, netip.Addr{}
	if last, ok := s.last[setIdx]; ok {
		for i, h := range set {
			if h.contains(last) {
				idx, cur = i, last
			}
		}
	}
	var startAt netip.Addr
	next := func() (netip.Addr, hlRange, bool) {
		for {
			h := set[idx]
			switch {
			case !cur.IsValid():
				cur = h.start
			case cur == h.end:
				idx = (idx + 1) % len(set)
				h = set[idx]
				cur = h.start
			default:
				cur = cur.Next()
			}
			if !startAt.IsValid() {
				startAt = cur
			} else if cur == startAt {
				return netip.Addr{}, h, false
			}
			if cur != h.gw {
				return cur, h, true
			}
		}
	}
	for {
		a, h, ok := next()
		if !ok {
			return netip.Addr{}, hlRange{}, fmt.Errorf("no IP addresses available in range set: %s", rangeSetString(set))
		}
		if _, taken := s.owners[a]; taken {
			continue
		}
		s.owners[a] = owner
		s.last[setIdx] = a
		return a, h, nil
	}
}

func (s *ipamStore) release(owner Owner) {
	for a, o := range s.owners {
		if o == owner {
			delete(s.owners, a)
		}
	}
}

func inSet(set []hlRange, a netip.Addr) bool {
	for _, h := range set {
		if h.contains(a) {
			return true
		}
	}
	return false
}

func rangeSetString(set []hlRange) string {
	s := ""
	for i, h := range set {
		if i > 0 {
			s += ","
		}
		s += h.start.String() + "-" + h.end.String()
	}
	return s
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// String shows a call readably in test failures.
func (c Call) String() string {
	switch c.Op {
	case OpPluginAdd, OpPluginDel:
		return fmt.Sprintf("%s %s %+v %s", c.Op, c.PluginType, c.Args, c.Conf)
	case OpValidate:
		return fmt.Sprintf("%s %s", c.Op, c.Conf)
	}
	return fmt.Sprintf("%s {ContainerID:%s NetNS:%s IfName:%s Args:%v CapabilityArgs:%v} %s",
		c.Op, c.RT.ContainerID, c.RT.NetNS, c.RT.IfName, c.RT.Args, c.RT.CapabilityArgs, c.Conf)
}

func (r *Runner) Status(ctx context.Context, list []byte) error {
	return r.begin(Call{Op: OpStatus, Conf: slices.Clone(list)})
}

func (r *Runner) Check(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error {
	return r.begin(Call{Op: OpCheck, Conf: slices.Clone(list), RT: copyRT(rt)})
}

func (r *Runner) GC(ctx context.Context, list []byte, valid []types.GCAttachment) error {
	return r.begin(Call{Op: OpGC, Conf: slices.Clone(list), Valid: slices.Clone(valid)})
}
