package doctor

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// HostFacts are the kernel's and the firewall's settings docker-cni
// depends on.
type HostFacts struct {
	// IPForward is net.ipv4.ip_forward ("" unreadable).
	IPForward string
	// BridgeNF is net.bridge.bridge-nf-call-iptables, "" when br_netfilter
	// is not loaded (bridged traffic then skips iptables).
	BridgeNF string
	// ForwardPolicy is the filter FORWARD policy ("" no iptables);
	// DockerUser whether dockerd's DOCKER-USER chain exists.
	ForwardPolicy string
	DockerUser    bool
	IptablesErr   string
	// IptablesMode is the backend of the iptables docker-cni runs
	// (nf_tables or legacy); DockerdModes the backends dockerd's DOCKER
	// chain is found in.
	IptablesMode string
	DockerdModes []string
	// NetNS: the kernel has network namespaces.
	NetNS bool
	// Modules are kernel drivers CNI plugins need, by name: "loaded",
	// "builtin", "available" (a module to load) or "missing".
	Modules map[string]string
}

// HostChecks: forwarding, bridged traffic through iptables, the FORWARD
// policy, the iptables backend, namespaces and the link types of the main
// plugins.
func HostChecks(h HostFacts) []Check {
	out := []Check{netnsCheck(h), forwardCheck(h), firewallCheck(h)}
	if c, ok := backendCheck(h); ok {
		out = append(out, c)
	}
	return append(out, modulesCheck(h))
}

func netnsCheck(h HostFacts) Check {
	if !h.NetNS {
		return Check{Area: AreaHost, Subject: "netns", Status: Fail, Summary: "the kernel has no network namespaces (/proc/self/ns/net): no container can join a CNI network"}
	}
	return check(AreaHost, "netns", OK, "network namespaces")
}

func forwardCheck(h HostFacts) Check {
	c := check(AreaHost, "net.ipv4.ip_forward", OK, "1: containers reach beyond the node")
	switch h.IPForward {
	case "1":
	case "":
		c.Status, c.Summary = Warn, "unreadable"
	default:
		c.Status, c.Summary = Warn, h.IPForward+": containers reach only this node (dockerd sets it to 1 when its firewall is on)"
		c.Fix = "sysctl -w net.ipv4.ip_forward=1"
	}
	return c
}

func firewallCheck(h HostFacts) Check {
	subject := "FORWARD"
	switch {
	case h.IptablesErr != "":
		return Check{Area: AreaHost, Subject: subject, Status: Info, Summary: "iptables: " + h.IptablesErr + "; nothing of iptables drops forwarded traffic"}
	case h.ForwardPolicy != "DROP":
		return check(AreaHost, subject, OK, "policy "+h.ForwardPolicy)
	case h.BridgeNF != "1":
		return check(AreaHost, subject, OK, "policy DROP (dockerd's), but bridged traffic skips iptables (br_netfilter not loaded or bridge-nf-call-iptables 0)")
	}
	c := check(AreaHost, subject, OK, "policy DROP (dockerd's) and bridged traffic passes iptables: each network needs accept rules (docker-cni's, or a firewall plugin's); see the networks below")
	if !h.DockerUser {
		c.Status = Warn
		c.Summary = "policy DROP and bridged traffic passes iptables, but there is no DOCKER-USER chain for docker-cni's accept rules of bound networks"
	}
	return c
}

// backendCheck: docker-cni's iptables must write where dockerd's rules
// are, or its accepts never meet dockerd's DROP.
func backendCheck(h HostFacts) (Check, bool) {
	if h.IptablesMode == "" || len(h.DockerdModes) == 0 {
		return Check{}, false
	}
	c := check(AreaHost, "iptables", OK, fmt.Sprintf("backend %s, as dockerd's rules", h.IptablesMode))
	if !slices.Contains(h.DockerdModes, h.IptablesMode) {
		c.Status = Fail
		c.Summary = fmt.Sprintf("iptables uses the %s backend, dockerd's rules are in %s: docker-cni's rules would not meet dockerd's", h.IptablesMode, strings.Join(h.DockerdModes, " and "))
		alt := map[string]string{"nf_tables": "nft", "legacy": "legacy"}[h.DockerdModes[0]]
		c.Fix = "update-alternatives --set iptables /usr/sbin/iptables-" + alt + " (the backend dockerd uses)"
	}
	return c, true
}

func modulesCheck(h HostFacts) Check {
	var names []string
	for m := range h.Modules {
		names = append(names, m)
	}
	sort.Strings(names)
	var have, missing, unknown []string
	for _, m := range names {
		switch h.Modules[m] {
		case "missing":
			missing = append(missing, m)
		case "unknown":
			unknown = append(unknown, m)
		default:
			have = append(have, m+" ("+h.Modules[m]+")")
		}
	}
	c := check(AreaHost, "link types", OK, "the kernel has "+strings.Join(have, ", "))
	if len(missing) > 0 {
		c.Status = Info
		c.Summary += "; not " + strings.Join(missing, ", ") + ": conflists whose plugins make such links cannot work here"
	}
	if len(unknown) > 0 {
		c.Details = append(c.Details, "cannot tell whether the kernel has "+strings.Join(unknown, ", ")+" (no /proc/config.gz, no /lib/modules lists)")
	}
	return c
}
