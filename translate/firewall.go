package translate

import (
	"net/netip"
)

// DockerUserChain is the chain dockerd leaves to users, jumped to first
// from FORWARD; docker-cni puts its accept rules for bound networks there.
const DockerUserChain = "DOCKER-USER"

// AcceptRule is one iptables rule (without the -A/-I/-D verb and chain),
// whether it is for ip6tables, and where it goes: Table (default filter)
// and Chain (default the chain the caller names).
type AcceptRule struct {
	V6           bool
	Table, Chain string `json:",omitempty"`
	Args         []string
}

// The chains docker-cni keeps its generated networks' rules in, each
// jumped to from the end of the built-in chain (after dockerd's rules, so
// DOCKER-USER still comes first).
const (
	ForwardChain     = "DOCKER-CNI-FORWARD"     // filter, from FORWARD
	PostroutingChain = "DOCKER-CNI-POSTROUTING" // nat, from POSTROUTING
)

// GeneratedRules are the host rules of a generated network, installed once
// at CreateNetwork where the bridge plugin's ipMasq and the firewall plugin
// would add rules for every container: traffic from the bridge and replies
// to it pass FORWARD (whose policy dockerd sets to DROP), and traffic leaving
// the bridge from its subnets is masqueraded, unless the network is
// internal.
func GeneratedRules(networkID, bridge string, subnets []netip.Prefix, internal bool) []AcceptRule {
	comment := []string{"-m", "comment", "--comment", NetworkRuleComment(networkID)}
	fwd := func(v6 bool, args ...string) AcceptRule {
		return AcceptRule{V6: v6, Table: "filter", Chain: ForwardChain, Args: append(args, comment...)}
	}
	var out []AcceptRule
	for _, v6 := range families(subnets) {
		out = append(out,
			fwd(v6, "-i", bridge, "-j", "ACCEPT"),
			fwd(v6, "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"))
	}
	for _, s := range subnets {
		if internal {
			break
		}
		out = append(out, AcceptRule{V6: s.Addr().Is6(), Table: "nat", Chain: PostroutingChain,
			Args: append([]string{"-s", s.Masked().String(), "!", "-o", bridge, "-j", "MASQUERADE"}, comment...)})
	}
	return out
}

// families are the address families of subnets, IPv4 first.
func families(subnets []netip.Prefix) []bool {
	var v4, v6 bool
	for _, s := range subnets {
		v4, v6 = v4 || s.Addr().Is4(), v6 || s.Addr().Is6()
	}
	var out []bool
	if v4 {
		out = append(out, false)
	}
	if v6 {
		out = append(out, true)
	}
	return out
}

// DockerUserRules are the rules that let traffic to and from a bound
// network's subnets through FORWARD on a host where dockerd set the policy
// to DROP: new connections in both directions, as pods expect.
func DockerUserRules(networkID string, subnets []netip.Prefix) []AcceptRule {
	comment := NetworkRuleComment(networkID)
	var out []AcceptRule
	for _, s := range subnets {
		for _, dir := range []string{"-s", "-d"} {
			out = append(out, AcceptRule{V6: s.Addr().Is6(), Args: []string{
				dir, s.Masked().String(), "-m", "comment", "--comment", comment, "-j", "ACCEPT",
			}})
		}
	}
	return out
}

// HasPlugin reports whether the chain has a plugin of the type.
func (pl *ParsedList) HasPlugin(typ string) bool {
	for _, t := range pl.PluginTypes() {
		if t == typ {
			return true
		}
	}
	return false
}

// NetworkRuleComment is the comment of every rule docker-cni installs for
// a network: it names the network, so that its rules can be found without
// its record.
func NetworkRuleComment(networkID string) string { return "docker-cni network " + ShortID(networkID) }
