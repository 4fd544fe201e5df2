package doctor

import (
	"fmt"
	"strings"
)

// NetworkFacts are one docker-cni network's record, its conflist as the
// conf dir has it now, the engines' word on it and its firewall rules.
type NetworkFacts struct {
	ID, CNINetwork string
	Bound          bool
	ConfFile       string `json:",omitempty"`
	// ConfErr: a bound network's conflist is gone from the conf dir (or
	// unreadable); ConfChanged: it differs from the copy taken at create.
	ConfErr     string `json:",omitempty"`
	ConfChanged bool   `json:",omitempty"`
	// Engine is the engine that has it; EnginesAnswered whether every
	// engine was asked (else an unknown Engine proves nothing).
	Engine          string `json:",omitempty"`
	EnginesAnswered bool
	Endpoints       int
	Joined          int
	// Leftovers are endpoints whose teardown failed and is retried:
	// "endpoint: why".
	Leftovers []string `json:",omitempty"`
	// HasFirewall: the chain has a firewall plugin (it accepts its own
	// traffic); Rules are docker-cni's recorded accept rules,
	// MissingRules those of them iptables no longer has.
	HasFirewall  bool
	Subnets      []string `json:",omitempty"`
	Rules        int
	MissingRules []string `json:",omitempty"`
}

// NetworkChecks: each docker-cni network's conflist, engine, endpoints,
// leftovers and firewall, against the host's FORWARD settings.
func NetworkChecks(nws []NetworkFacts, h HostFacts) []Check {
	var out []Check
	for _, n := range nws {
		out = append(out, networkCheck(n, h))
	}
	return out
}

func networkCheck(n NetworkFacts, h HostFacts) Check {
	kind := "generated"
	if n.Bound {
		kind = "bound to " + n.ConfFile
	}
	subject := shortID(n.ID)
	c := check(AreaNetwork, subject, OK, fmt.Sprintf("CNI network %q (%s): %d endpoint(s), %d joined", n.CNINetwork, kind, n.Endpoints, n.Joined))
	worst := ""
	worse := func(st Status, detail string) {
		if rank(st) >= rank(c.Status) {
			c.Status, worst = st, detail
		}
		c.Details = append(c.Details, detail)
	}
	switch {
	case n.Engine != "":
		c.Details = append(c.Details, "engine "+n.Engine)
	case n.EnginesAnswered:
		worse(Warn, "no engine of --docker-host has it: removed while docker-cni was down, or its engine is not in --docker-host (then docker-cni drops it)")
	}
	if n.ConfErr != "" {
		worse(Warn, "its conflist is gone from the conf dir ("+n.ConfErr+"): joins use the copy taken at create")
	} else if n.ConfChanged {
		worse(Info, "its conflist changed since the network was made: new joins use it, joined containers keep theirs")
	}
	for _, l := range n.Leftovers {
		worse(Warn, "left over, teardown retried: "+l)
	}
	forwardDrops := h.ForwardPolicy == "DROP" && h.BridgeNF == "1"
	switch {
	case len(n.MissingRules) > 0:
		worse(Fail, "accept rules docker-cni installed are gone from iptables (the next reconcile pass restores them): "+strings.Join(n.MissingRules, "; "))
		c.Fix = "docker-cni gc"
	case forwardDrops && !n.HasFirewall && n.Rules == 0:
		worse(Fail, "FORWARD drops its traffic: its chain has no firewall plugin and docker-cni installed no accept rules (is the daemon run with --docker-user-rules=false?)")
		c.Fix = userRulesFix(n)
	}
	if c.Status != OK {
		c.Summary += "; " + worst
	}
	return c
}

// userRulesFix is what lets a network's traffic through DOCKER-USER: what
// docker-cni would install.
func userRulesFix(n NetworkFacts) string {
	var cmds []string
	for _, s := range n.Subnets {
		bin := "iptables"
		if strings.Contains(s, ":") {
			bin = "ip6tables"
		}
		cmds = append(cmds, fmt.Sprintf("%s -I DOCKER-USER -s %s -j ACCEPT && %s -I DOCKER-USER -d %s -j ACCEPT", bin, s, bin, s))
	}
	return "run the daemon with --docker-user-rules (the default), add a firewall plugin to the conflist, or: " + strings.Join(cmds, " && ")
}

func rank(s Status) int {
	return map[Status]int{OK: 0, Info: 1, Warn: 2, Fail: 3}[s]
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
