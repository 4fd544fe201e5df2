// Package compat is docker-cni's compatibility matrix, the pure part of it:
// which cells there are (Docker engine x CNI plugin set x spec version x
// main, IPAM and chained plugin x CRI runtime), the conflist each cell
// binds to, and the markdown table the results make (docs/compatibility.md).
// test/e2e/compat_test.go runs the cells against real engines, plugins and
// runtimes; `make compat` runs them all and writes the table.
//
// It runs nothing, reads no environment and touches no file: facts come in
// as arguments.
package compat

import (
	"fmt"
	"strings"
)

// Docker engines. Debian's is 20.10 with its iptables firewall on the host;
// the current engine (moby v2, test/engines/current.sh) runs three ways.
const (
	// EngineDebian is Debian's docker.io 20.10 on the host, iptables on.
	EngineDebian = "debian"
	// EngineCurrent is the current engine as the e2e suite runs it beside
	// 20.10: --iptables=false (its firewall would clash with 20.10's).
	EngineCurrent = "current"
	// EngineCurrentIPTables is the current engine with its iptables firewall,
	// in a network namespace of its own (test/compat/engine.sh).
	EngineCurrentIPTables = "current-iptables"
	// EngineCurrentNFTables is the same with --firewall-backend=nftables.
	EngineCurrentNFTables = "current-nftables"
)

// CNI plugin sets.
const (
	// PluginsDebian is Debian's containernetworking-plugins (/usr/lib/cni).
	PluginsDebian = "debian"
	// PluginsUpstream is the newest github.com/containernetworking/plugins,
	// built by test/compat/plugins.sh.
	PluginsUpstream = "upstream"
)

// Main plugins (the first of the chain).
const (
	MainBridge     = "bridge"
	MainPTP        = "ptp"
	MainMacvlan    = "macvlan"
	MainIPvlanL2   = "ipvlan-l2"
	MainIPvlanL3   = "ipvlan-l3"
	MainVLAN       = "vlan"
	MainHostDevice = "host-device"
)

// IPAM plugins.
const (
	IPAMHostLocal = "host-local"
	IPAMStatic    = "static"
)

// Chained plugins: portmap always (so that -p can be tried in every cell),
// and one more after it.
const (
	ChainPortmap   = "portmap"
	ChainBandwidth = "bandwidth"
	ChainFirewall  = "firewall"
	ChainTuning    = "tuning"
	ChainSBR       = "sbr"
)

// CRI runtimes for the pod side.
const (
	RuntimeContainerd1 = "containerd-1.6"
	RuntimeContainerd2 = "containerd-2"
)

// Clients.
const (
	ClientDocker  = "docker"
	ClientCompose = "docker-compose"
)

// SpecVersions are the CNI spec versions a conflist can name that chain
// plugins (docker-cni's cni.version accepts these).
var SpecVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// Groups: why a cell is in the matrix (a cell can be in several).
const (
	GroupBaseline = "baseline"
	GroupEngine   = "engine"
	GroupPlugins  = "plugins"
	GroupVersion  = "version"
	GroupMain     = "main"
	GroupIPAM     = "ipam"
	GroupChained  = "chained"
	GroupRuntime  = "runtime"
	GroupCI       = "ci"
	GroupCompose  = "compose"
)

// Cell is one combination the scenario runs on.
type Cell struct {
	Engine, Plugins, Version, Main, IPAM, Chained, Runtime, Client string
	// Groups say why the cell is there (Group* constants).
	Groups []string
}

// Baseline is the cell every other one varies from.
var Baseline = Cell{
	Engine: EngineDebian, Plugins: PluginsDebian, Version: "1.0.0",
	Main: MainBridge, IPAM: IPAMHostLocal, Chained: ChainPortmap,
	Runtime: RuntimeContainerd1, Client: ClientDocker,
}

// Key names a cell uniquely (and is its subtest name).
func (c Cell) Key() string {
	return strings.Join([]string{c.Client, c.Engine, c.Plugins, c.Version, c.Main, c.IPAM, c.Chained, c.Runtime}, "/")
}

// Chain is the plugin types of the cell's conflist, main plugin first; the
// IPAM plugin is not among them.
func (c Cell) Chain() []string {
	main := c.Main
	if strings.HasPrefix(main, "ipvlan") {
		main = "ipvlan"
	}
	chain := []string{main, ChainPortmap}
	if c.Chained != ChainPortmap {
		chain = append(chain, c.Chained)
	}
	return chain
}

// OneAttachmentPerNetwork reports whether every container and pod needs a
// conflist (and so a Docker network) of its own: static IPAM has one
// address, host-device moves the one device its conflist names.
func (c Cell) OneAttachmentPerNetwork() bool {
	return c.IPAM == IPAMStatic || c.Main == MainHostDevice
}

// PortsFromHost says whether the host can reach the containers at all, and
// so a port published on it; when not, why.
func (c Cell) PortsFromHost() (bool, string) {
	switch c.Main {
	case MainMacvlan, MainIPvlanL2, MainIPvlanL3, MainVLAN:
		return false, fmt.Sprintf("-p n/a: the host has no path to %s interfaces on its own parent link", c.Main)
	}
	return true, ""
}

type dimension struct {
	group  string
	values []string
	set    func(*Cell, string)
}

var dimensions = []dimension{
	{GroupEngine, []string{EngineDebian, EngineCurrent, EngineCurrentIPTables, EngineCurrentNFTables}, func(c *Cell, v string) { c.Engine = v }},
	{GroupPlugins, []string{PluginsDebian, PluginsUpstream}, func(c *Cell, v string) { c.Plugins = v }},
	{GroupVersion, SpecVersions, func(c *Cell, v string) { c.Version = v }},
	{GroupMain, []string{MainBridge, MainPTP, MainMacvlan, MainIPvlanL2, MainIPvlanL3, MainVLAN, MainHostDevice}, func(c *Cell, v string) { c.Main = v }},
	{GroupIPAM, []string{IPAMHostLocal, IPAMStatic}, func(c *Cell, v string) { c.IPAM = v }},
	{GroupChained, []string{ChainPortmap, ChainBandwidth, ChainFirewall, ChainTuning, ChainSBR}, func(c *Cell, v string) { c.Chained = v }},
	{GroupRuntime, []string{RuntimeContainerd1, RuntimeContainerd2}, func(c *Cell, v string) { c.Runtime = v }},
}

// CISlice is what CI runs on every change: the Debian engine x both plugin
// sets x two spec versions x bridge and macvlan, every product; and
// VerbsCell.
func CISlice() []Cell {
	var out []Cell
	for _, p := range []string{PluginsDebian, PluginsUpstream} {
		for _, v := range []string{"0.3.1", "1.0.0"} {
			for _, m := range []string{MainBridge, MainMacvlan} {
				c := Baseline
				c.Plugins, c.Version, c.Main = p, v, m
				c.Groups = []string{GroupCI}
				out = append(out, c)
			}
		}
	}
	v := VerbsCell
	v.Groups = []string{GroupCI}
	return append(out, v)
}

// VerbsCell is where every CNI verb docker-cni sends runs against real
// plugins: spec 1.1.0 (STATUS, CHECK, GC) on the current engine (handover,
// where CHECK applies), with the plugins and the CRI runtime that speak it.
var VerbsCell = Cell{
	Engine: EngineCurrent, Plugins: PluginsUpstream, Version: "1.1.0",
	Main: MainBridge, IPAM: IPAMHostLocal, Chained: ChainPortmap,
	Runtime: RuntimeContainerd2, Client: ClientDocker,
}

// Full is the whole matrix: the baseline, every dimension varied alone from
// it, a few pairs where one dimension decides another's verdict, the CI
// slice's product and docker-compose on each engine. A cell
// reached more than one way is listed once, with every group.
func Full() []Cell {
	var out []Cell
	index := map[string]int{}
	add := func(c Cell, group string) {
		k := c.Key()
		if i, ok := index[k]; ok {
			out[i].Groups = append(out[i].Groups, group)
			return
		}
		c.Groups = []string{group}
		index[k] = len(out)
		out = append(out, c)
	}
	add(Baseline, GroupBaseline)
	for _, d := range dimensions {
		for _, v := range d.values {
			c := Baseline
			d.set(&c, v)
			add(c, d.group)
		}
	}
	// Where one dimension's verdict hangs on another: the spec versions
	// with the newest plugins too (Debian's stop at 1.0.0), firewall below
	// 0.4.0, and 1.1.0 (STATUS) with containerd 2.x.
	for _, v := range SpecVersions {
		c := Baseline
		c.Plugins, c.Version = PluginsUpstream, v
		add(c, GroupVersion)
	}
	fw := Baseline
	fw.Chained, fw.Version = ChainFirewall, "0.3.1"
	add(fw, GroupChained)
	st := Baseline
	st.Plugins, st.Version, st.Runtime = PluginsUpstream, "1.1.0", RuntimeContainerd2
	add(st, GroupRuntime)
	for _, c := range CISlice() {
		add(c, GroupCI)
	}
	for _, e := range dimensions[0].values {
		c := Baseline
		c.Engine, c.Client = e, ClientCompose
		add(c, GroupCompose)
	}
	return out
}

// Varies names the dimension a cell of group g differs from the baseline
// in ("" for the baseline, the CI slice and compose).
func Varies(g string) string {
	for _, d := range dimensions {
		if d.group == g {
			return g
		}
	}
	return ""
}
