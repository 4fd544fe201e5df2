package main

// The node's side of `docker-cni doctor`: kernel and firewall settings,
// the conf dir's conflists through docker-cni's own binding rules, and
// docker-cni's networks. Read only.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/coreos/go-iptables/iptables"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/doctor"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/hostfw"
	"github.com/docker-cni/docker-cni/translate"
)

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// probeHost reads sysctls, the FORWARD chain, the iptables backends and
// the kernel's drivers.
func probeHost(ctx context.Context) doctor.HostFacts {
	h := doctor.HostFacts{
		IPForward: readTrim("/proc/sys/net/ipv4/ip_forward"),
		BridgeNF:  readTrim("/proc/sys/net/bridge/bridge-nf-call-iptables"),
		Modules:   map[string]string{},
	}
	_, err := os.Stat("/proc/self/ns/net")
	h.NetNS = err == nil
	if ipt, err := iptables.New(); err != nil {
		h.IptablesErr = err.Error()
	} else {
		rules, err := ipt.List("filter", "FORWARD")
		if err != nil {
			h.IptablesErr = err.Error()
		}
		h.ForwardPolicy = doctor.ForwardPolicy(rules)
		h.DockerUser, _ = ipt.ChainExists("filter", translate.DockerUserChain)
	}
	if out, err := exec.CommandContext(ctx, "iptables", "--version").Output(); err == nil {
		h.IptablesMode = doctor.IptablesMode(string(out))
	}
	kconfig := kernelConfig()
	h.DockerdModes = dockerdModes(ctx, kconfig)
	release := readTrim("/proc/sys/kernel/osrelease")
	builtin, _ := os.ReadFile(filepath.Join("/lib/modules", release, "modules.builtin"))
	dep, _ := os.ReadFile(filepath.Join("/lib/modules", release, "modules.dep"))
	for name := range doctor.KernelDrivers {
		_, err := os.Stat(filepath.Join("/sys/module", name))
		h.Modules[name] = doctor.ModuleState(name, err == nil, kconfig, string(builtin), string(dep))
	}
	return h
}

// dockerdModes are the iptables backends whose filter table has dockerd's
// DOCKER-USER chain. A backend is asked only when it is in use already
// (its tables are in the kernel), so nothing is loaded.
func dockerdModes(ctx context.Context, kconfig string) []string {
	var out []string
	try := func(mode, bin string, inUse bool) {
		if inUse && exec.CommandContext(ctx, bin, "-w", "5", "-S", translate.DockerUserChain).Run() == nil {
			out = append(out, mode)
		}
	}
	_, nft := os.Stat("/sys/module/nf_tables")
	try("nf_tables", "iptables-nft", nft == nil || doctor.KernelConfigValue(kconfig, "CONFIG_NF_TABLES") == "y")
	try("legacy", "iptables-legacy", strings.Contains(readTrim("/proc/net/ip_tables_names"), "filter"))
	return out
}

// kernelConfig is the running kernel's config, "" when it cannot be read.
func kernelConfig() string {
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		if z, err := gzip.NewReader(f); err == nil {
			b, _ := io.ReadAll(z)
			return string(b)
		}
	}
	b, _ := os.ReadFile("/boot/config-" + readTrim("/proc/sys/kernel/osrelease"))
	return string(b)
}

// probeConflists runs docker-cni's own binding rules over every conflist
// of the conf dir: translate's pools (with flannel's subnet file), the
// driver's chain validation (CNI VERSION of each plugin).
func probeConflists(ctx context.Context, s *doctorSettings, nws []admin.NetworkView) ([]doctor.ConflistFacts, string) {
	files, bad, err := cniconf.Load(s.confDir)
	if err != nil {
		return nil, err.Error()
	}
	runner := cnirun.New(s.binDirs(), "")
	runner.Timeout = s.timeout
	var out []doctor.ConflistFacts
	first := map[string]string{}
	for _, f := range files {
		cf := conflistFacts(ctx, runner, f)
		if prev, ok := first[f.Name]; ok {
			cf.ShadowedBy = prev
		} else {
			first[f.Name] = f.Path
		}
		for _, nw := range nws {
			if nw.Network != nil && nw.Bound && nw.CNINetwork == f.Name && cf.ShadowedBy == "" {
				cf.BoundBy = append(cf.BoundBy, translate.ShortID(nw.ID))
			}
		}
		out = append(out, cf)
	}
	for path, err := range bad {
		out = append(out, doctor.ConflistFacts{Path: path, LoadErr: err.Error()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, ""
}

func conflistFacts(ctx context.Context, runner *cnirun.LibCNI, f cniconf.File) doctor.ConflistFacts {
	cf := doctor.ConflistFacts{Path: f.Path, Name: f.Name}
	pl, err := cniconf.Parse(f.Bytes)
	if err != nil {
		cf.BindErr = err.Error()
		return cf
	}
	cf.CNIVersion, cf.Plugins = pl.CNIVersion, pl.PluginTypes()
	cf.SubnetFile, _ = pl.FlannelSubnetFile()
	ipam, err := pl.IPAM()
	if err != nil {
		cf.BindErr = err.Error()
		return cf
	}
	cf.IPAMType, _ = ipam["type"].(string)
	pools, err := translate.BindingPools(pl, nil)
	var sn *translate.SubnetNeededError
	switch {
	case errors.As(err, &sn):
		cf.NeedsSubnet, cf.BindErr = true, err.Error()
	case err != nil:
		cf.BindErr = err.Error()
		return cf
	}
	var gateways []string
	for _, p := range pools {
		cf.Pools = append(cf.Pools, fmt.Sprintf("%s gateway %s", p.Subnet, p.Gateway))
		gateways = append(gateways, p.Gateway.String())
	}
	errs := []error{driver.ValidateChain(ctx, runner, f.Bytes, gateways)}
	if cf.IPAMType != "host-local" && cf.SubnetFile == "" {
		// Reservations run the IPAM plugin on its own (host-local's run
		// in docker-cni's process).
		errs = append(errs, runner.Validate(ctx, ipamOnly(pl.Name, pl.CNIVersion, cf.IPAMType)))
	}
	if err := errors.Join(errs...); err != nil {
		cf.ChainErr = oneLine(err)
	}
	return cf
}

// ipamOnly is a conflist of the IPAM plugin alone, for its VERSION check.
func ipamOnly(name, version, typ string) []byte {
	b, _ := json.Marshal(map[string]any{"cniVersion": version, "name": name, "plugins": []any{map[string]any{"type": typ}}})
	return b
}

// sameJSON reports whether two JSON texts are the same but for spacing
// (the admin API serves the stored conflist compacted).
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}

// probeNetworks reads docker-cni's networks and endpoints (from the daemon,
// or its state dir) and checks each against the conf dir, the engines
// and iptables.
func probeNetworks(ctx context.Context, s *doctorSettings, owners map[string]string, enginesAnswered bool) ([]admin.NetworkView, []doctor.NetworkFacts, error) {
	r := &reader{adminSocket: s.adminSocket, stateDir: s.stateDir}
	var nws []admin.NetworkView
	var eps []admin.EndpointView
	if _, err := r.read(ctx, "networks", &nws); err != nil {
		return nil, nil, err
	}
	if _, err := r.read(ctx, "endpoints", &eps); err != nil {
		return nil, nil, err
	}
	fw := hostfw.New()
	var out []doctor.NetworkFacts
	for _, nw := range nws {
		if nw.Network == nil {
			continue
		}
		n := doctor.NetworkFacts{ID: nw.ID, CNINetwork: nw.CNINetwork, Bound: nw.Bound, ConfFile: nw.ConfFile, Engine: owners[nw.ID],
			EnginesAnswered: enginesAnswered, Endpoints: nw.EndpointCount, Joined: nw.Joined, Subnets: nw.Subnets, Rules: len(nw.Rules)}
		if nw.Bound {
			f, err := cniconf.Find(s.confDir, nw.CNINetwork)
			if err != nil {
				n.ConfErr = err.Error()
			} else {
				n.ConfChanged = !sameJSON(f.Bytes, nw.Conflist)
			}
		}
		if pl, err := translate.ParseList(nw.Conflist); err == nil {
			n.HasFirewall = pl.HasPlugin("firewall")
		}
		var recorded []translate.AcceptRule
		for _, r := range nw.Rules {
			recorded = append(recorded, translate.AcceptRule{V6: r.V6, Table: r.Table, Chain: r.Chain, Args: r.Args})
		}
		missing, _ := fw.Missing(ctx, translate.DockerUserChain, recorded)
		for _, m := range missing {
			n.MissingRules = append(n.MissingRules, strings.Join(m.Args, " "))
		}
		for _, ep := range eps {
			if ep.Endpoint != nil && ep.NetworkID == nw.ID && ep.Leftover != "" {
				n.Leftovers = append(n.Leftovers, translate.ShortID(ep.ID)+": "+ep.Leftover)
			}
		}
		out = append(out, n)
	}
	return nws, out, nil
}
