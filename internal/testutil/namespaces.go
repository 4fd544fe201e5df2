package testutil

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/docker-cni/docker-cni/translate"
)

// HostNetNS is the path under which the driver names its own (the host's)
// netns; the fake always has it.
const HostNetNS = "/proc/self/ns/net"

// Link is a network interface in the namespace model.
type Link struct {
	Name  string
	Alias string
	MAC   string
	Addrs []netip.Prefix
	// DefaultV4 and DefaultV6 say the link carries the netns's default
	// route of that family.
	DefaultV4, DefaultV6 bool
}

// NSCall is one call of a driver.Namespaces method.
type NSCall struct {
	Method string
	Args   []string
}

type netnsModel struct {
	links []Link
	// def4 and def6 are default routes not tied to a modelled link.
	def4, def6 bool
}

// Namespaces is an in-memory model of network namespaces (by path), their
// links and default routes, implementing driver.Namespaces the way package
// sandbox does: Create refuses an existing path, Remove and DeleteHostLink
// accept what is already gone, moving a link drops its addresses and routes.
// It records every call. The zero value is not usable; use NewNamespaces.
type Namespaces struct {
	mu    sync.Mutex
	netns map[string]*netnsModel
	calls []NSCall
	fail  map[string]error
	busy  map[translate.PortKey]bool
}

// NewNamespaces returns a model holding only the host netns (HostNetNS).
func NewNamespaces() *Namespaces {
	return &Namespaces{
		netns: map[string]*netnsModel{HostNetNS: {}},
		fail:  map[string]error{},
		busy:  map[translate.PortKey]bool{},
	}
}

// AddNetNS makes a netns at path holding lo and the given links, as a
// container engine would for a sandbox. It does not record a call.
func (n *Namespaces) AddNetNS(path string, links ...Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := &netnsModel{links: []Link{{Name: "lo"}}}
	for _, l := range links {
		m.links = append(m.links, cloneLink(l))
	}
	n.netns[path] = m
}

// AddLink puts a link in the netns at path (made by someone else), without
// recording a call.
func (n *Namespaces) AddLink(path string, l Link) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.netns[path].links = append(n.netns[path].links, cloneLink(l))
}

// DropNetNS makes the netns at path vanish (its container died), without
// recording a call.
func (n *Namespaces) DropNetNS(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.netns, path)
}

// SetDefaultRoutes gives the netns default routes not tied to a modelled
// link, e.g. from a network the container joined before.
func (n *Namespaces) SetDefaultRoutes(path string, v4, v6 bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if m := n.netns[path]; m != nil {
		m.def4, m.def6 = v4, v6
	}
}

// Exists reports whether the model has a netns at path.
func (n *Namespaces) Exists(path string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.netns[path] != nil
}

// Links returns copies of the links of the netns at path (nil if none).
func (n *Namespaces) Links(path string) []Link {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.netns[path]
	if m == nil {
		return nil
	}
	out := make([]Link, 0, len(m.links))
	for _, l := range m.links {
		out = append(out, cloneLink(l))
	}
	return out
}

// Link returns the link named name in the netns at path.
func (n *Namespaces) Link(path, name string) (Link, bool) {
	for _, l := range n.Links(path) {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

// Move moves link name from one netns to another under newName, as
// libnetwork does with a move-mode interface; it records no call.
func (n *Namespaces) Move(from, name, to, newName string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	src, dst := n.netns[from], n.netns[to]
	if src == nil || dst == nil {
		return fmt.Errorf("move %s from %s to %s: no such netns", name, from, to)
	}
	i := indexByName(src.links, name)
	if i < 0 {
		return fmt.Errorf("move %s: not in %s", name, from)
	}
	if indexByName(dst.links, newName) >= 0 {
		return fmt.Errorf("move %s: %s exists in %s", name, newName, to)
	}
	l := src.links[i]
	src.links = slices.Delete(src.links, i, i+1)
	l.Name = newName
	dst.links = append(dst.links, l)
	return nil
}

// Fail makes every later call of the named method (e.g. "MoveToHost") fail
// with err; a nil err clears it.
func (n *Namespaces) Fail(method string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		delete(n.fail, method)
		return
	}
	n.fail[method] = err
}

// SetPortBusy makes HostPortFree report the port as taken.
func (n *Namespaces) SetPortBusy(k translate.PortKey) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.busy[k] = true
}

// Calls returns the recorded calls of the given methods (all when none is
// given), in order.
func (n *Namespaces) Calls(methods ...string) []NSCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []NSCall
	for _, c := range n.calls {
		if len(methods) == 0 || slices.Contains(methods, c.Method) {
			out = append(out, NSCall{Method: c.Method, Args: slices.Clone(c.Args)})
		}
	}
	return out
}

// ResetCalls forgets the recorded calls.
func (n *Namespaces) ResetCalls() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = nil
}

// record notes a call and returns the failure set for its method; n.mu
// must be held.
func (n *Namespaces) record(method string, args ...string) error {
	n.calls = append(n.calls, NSCall{Method: method, Args: args})
	return n.fail[method]
}

func (n *Namespaces) IsNetNS(path string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.record("IsNetNS", path)
	return n.netns[path] != nil
}

func (n *Namespaces) Create(path string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("Create", path); err != nil {
		return err
	}
	if n.netns[path] != nil {
		return fmt.Errorf("create netns file %s: file exists", path)
	}
	n.netns[path] = &netnsModel{links: []Link{{Name: "lo"}}}
	return nil
}

func (n *Namespaces) Remove(path string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("Remove", path); err != nil {
		return err
	}
	if path == HostNetNS {
		return fmt.Errorf("remove netns %s: refusing to remove the host netns", path)
	}
	delete(n.netns, path)
	return nil
}

func (n *Namespaces) LinkNames(nsPath string) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("LinkNames", nsPath); err != nil {
		return nil, err
	}
	m := n.netns[nsPath]
	if m == nil {
		return nil, fmt.Errorf("open netns %s: no such file or directory", nsPath)
	}
	var names []string
	for _, l := range m.links {
		names = append(names, l.Name)
	}
	return names, nil
}

func (n *Namespaces) LinkNameByMAC(nsPath, mac string) (string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("LinkNameByMAC", nsPath, mac); err != nil {
		return "", err
	}
	m := n.netns[nsPath]
	if m == nil {
		return "", fmt.Errorf("open netns %s: no such file or directory", nsPath)
	}
	for _, l := range m.links {
		if strings.EqualFold(l.MAC, mac) {
			return l.Name, nil
		}
	}
	return "", nil
}

func (n *Namespaces) MoveToHost(nsPath, ifName, newName, alias string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("MoveToHost", nsPath, ifName, newName); err != nil {
		return err
	}
	src := n.netns[nsPath]
	if src == nil {
		return fmt.Errorf("open netns %s: no such file or directory", nsPath)
	}
	i := indexByName(src.links, ifName)
	if i < 0 {
		return fmt.Errorf("find %s in %s: Link not found", ifName, nsPath)
	}
	host := n.netns[HostNetNS]
	if indexByName(host.links, newName) >= 0 {
		return fmt.Errorf("move %s to the host netns: %s: file exists", ifName, newName)
	}
	l := src.links[i]
	src.links = slices.Delete(src.links, i, i+1)
	l.Name, l.Alias, l.Addrs, l.DefaultV4, l.DefaultV6 = newName, alias, nil, false, false
	host.links = append(host.links, l)
	return nil
}

func (n *Namespaces) HostLinkExists(name string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return indexByName(n.netns[HostNetNS].links, name) >= 0
}

func (n *Namespaces) DeleteHostLink(name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("DeleteHostLink", name); err != nil {
		return err
	}
	host := n.netns[HostNetNS]
	if i := indexByName(host.links, name); i >= 0 {
		host.links = slices.Delete(host.links, i, i+1)
	}
	return nil
}

func (n *Namespaces) Reclaim(fromNS, mac, toNS, newName string, addrs []netip.Prefix) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var as []string
	for _, a := range addrs {
		as = append(as, a.String())
	}
	if err := n.record("Reclaim", fromNS, mac, toNS, newName, strings.Join(as, ",")); err != nil {
		return false, err
	}
	to := n.netns[toNS]
	if to == nil {
		return false, fmt.Errorf("open netns %s: no such file or directory", toNS)
	}
	from := n.netns[fromNS]
	if from == nil {
		return false, fmt.Errorf("open netns %s: no such file or directory", fromNS)
	}
	i := slices.IndexFunc(from.links, func(l Link) bool { return strings.EqualFold(l.MAC, mac) })
	if i < 0 {
		return false, nil
	}
	if indexByName(to.links, newName) >= 0 {
		return true, fmt.Errorf("rename reclaimed link to %s: file exists", newName)
	}
	l := from.links[i]
	from.links = slices.Delete(from.links, i, i+1)
	l.Name, l.Addrs, l.DefaultV4, l.DefaultV6 = newName, slices.Clone(addrs), false, false
	to.links = append(to.links, l)
	return true, nil
}

func (n *Namespaces) DefaultRoutes(nsPath string) (v4, v6 bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("DefaultRoutes", nsPath); err != nil {
		return false, false, err
	}
	m := n.netns[nsPath]
	if m == nil {
		return false, false, fmt.Errorf("open netns %s: no such file or directory", nsPath)
	}
	v4, v6 = m.def4, m.def6
	for _, l := range m.links {
		v4, v6 = v4 || l.DefaultV4, v6 || l.DefaultV6
	}
	return v4, v6, nil
}

// LinkRoutes models the kernel's connected routes: each address's subnet
// on the link, as a bridge-like chain leaves them; no default route is
// read (the fake keeps none per link).
func (n *Namespaces) LinkRoutes(nsPath, ifName string) (translate.LinkRoutes, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.record("LinkRoutes", nsPath, ifName); err != nil {
		return translate.LinkRoutes{}, err
	}
	m := n.netns[nsPath]
	if m == nil {
		return translate.LinkRoutes{}, fmt.Errorf("open netns %s: no such file or directory", nsPath)
	}
	i := indexByName(m.links, ifName)
	if i < 0 {
		return translate.LinkRoutes{}, fmt.Errorf("find %s in %s: link not found", ifName, nsPath)
	}
	var out translate.LinkRoutes
	for _, a := range m.links[i].Addrs {
		out.OnLink = append(out.OnLink, a.Masked())
	}
	return out, nil
}

// HostLinks lists the host links whose names start with prefix and carry
// alias.
func (n *Namespaces) HostLinks(prefix, alias string) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, l := range n.netns[HostNetNS].links {
		if strings.HasPrefix(l.Name, prefix) && l.Alias == alias {
			out = append(out, l.Name)
		}
	}
	return out, nil
}

// HostLinkIndex models link indexes as 1 for a host link that exists.
func (n *Namespaces) HostLinkIndex(name string) int {
	if n.HostLinkExists(name) {
		return 1
	}
	return 0
}

// DeleteHostLinkIndex deletes the host link by name.
func (n *Namespaces) DeleteHostLinkIndex(name string, index int) error { return n.DeleteHostLink(name) }

// BridgePorts models a bridge without ports (the model has no bridges).
func (n *Namespaces) BridgePorts(bridge string) ([]string, error) { return nil, nil }

// Entries lists the netns of the model under dir.
func (n *Namespaces) Entries(dir string) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for p := range n.netns {
		if filepath.Dir(p) == dir {
			out = append(out, filepath.Base(p))
		}
	}
	sort.Strings(out)
	return out, nil
}

func (n *Namespaces) HostPortFree(k translate.PortKey) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.record("HostPortFree", k.Proto, k.HostIP, fmt.Sprint(k.Port))
	return !n.busy[k]
}

// addChainLink is what a chain's ADD does to the model: the container's
// link appears in nsPath.
func (n *Namespaces) addChainLink(nsPath string, l Link) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.netns[nsPath]
	if m == nil {
		return fmt.Errorf("failed to open netns %q: no such file or directory", nsPath)
	}
	if indexByName(m.links, l.Name) >= 0 {
		return fmt.Errorf("container veth name provided (%s) already exists", l.Name)
	}
	m.links = append(m.links, l)
	return nil
}

// delChainLink is what a chain's DEL does: the container's link goes, if
// the netns and the link are still there.
func (n *Namespaces) delChainLink(nsPath, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.netns[nsPath]
	if m == nil {
		return
	}
	if i := indexByName(m.links, name); i >= 0 {
		m.links = slices.Delete(m.links, i, i+1)
	}
}

func indexByName(links []Link, name string) int {
	return slices.IndexFunc(links, func(l Link) bool { return l.Name == name })
}

func cloneLink(l Link) Link {
	l.Addrs = slices.Clone(l.Addrs)
	return l
}
