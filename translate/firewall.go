package translate

import (
	"net/netip"
)

// DockerUserChain is the chain dockerd leaves to users, jumped to first
// from FORWARD; docker-cni puts its accept rules for bound networks there.
const DockerUserChain = "DOCKER-USER"

// AcceptRule is one iptables rule (without the -A/-I/-D verb and chain)
// and whether it is for ip6tables.
type AcceptRule struct {
	V6   bool
	Args []string
}

// DockerUserRules are the rules that let traffic to and from a bound
// network's subnets through FORWARD on a host where dockerd set the policy
// to DROP: new connections in both directions, as pods expect.
func DockerUserRules(networkID string, subnets []netip.Prefix) []AcceptRule {
	comment := "docker-cni network " + ShortID(networkID)
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
