package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"

	"github.com/docker-cni/docker-cni/test/cri"
)

// sweepLeftovers removes what an earlier run of the suite left behind when
// it was killed before its cleanups ran (a CI timeout, a reboot): the e2e-*
// containers and networks on the harness's engines, the bridges docker-cni
// made for those networks and the rules it installed for them. A killed run
// also loses its daemon's state dir (a fresh one per run), so no docker-cni
// can tidy these itself: a left bridge keeps the route of its subnet and
// the next run's network on the same subnet is unreachable.
//
// It runs once the daemon is up (Docker asks the driver to delete a
// network); it touches only names the suite gives: e2e-* in Docker (and
// the containers left on e2e-* networks: an example's, named by its README),
// cni-<network ID> links of those networks, and rules whose comment names
// them.
func sweepLeftovers(ctx context.Context) error {
	var gone []string
	for _, e := range s.engines {
		ids, err := e.sweepDocker()
		if err != nil {
			return fmt.Errorf("engine %s: %w", e.name, err)
		}
		gone = append(gone, ids...)
	}
	for _, id := range gone {
		if err := sweepNetwork(ctx, id); err != nil {
			return err
		}
	}
	if err := sweepOrphanRules(ctx); err != nil {
		return err
	}
	return sweepHandedOverLinks(ctx)
}

// ruleNetwork finds the network ID a docker-cni rule's comment names.
var ruleNetwork = regexp.MustCompile(`docker-cni network ([0-9a-f]{12})`)

// sweepOrphanRules removes the rules (and bridge) of networks no engine
// of the suite has any more: a killed run's daemon installed them, and
// its state dir, which recorded them, is gone.
func sweepOrphanRules(ctx context.Context) error {
	var live []string
	for _, e := range s.engines {
		out, err := e.docker("network", "ls", "-q", "--no-trunc")
		if err != nil {
			return fmt.Errorf("engine %s: list networks: %v: %s", e.name, err, out)
		}
		live = append(live, strings.Fields(out)...)
	}
	save, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return nil // no iptables: no rules
	}
	seen := map[string]bool{}
	for _, m := range ruleNetwork.FindAllStringSubmatch(string(save), -1) {
		id := m[1]
		if seen[id] || slices.ContainsFunc(live, func(l string) bool { return strings.HasPrefix(l, id) }) {
			continue
		}
		seen[id] = true
		fmt.Fprintf(os.Stderr, "e2e: removing the rules of network %s, which no engine has\n", id)
		if err := sweepNetwork(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// otherNetNS is how ip link names a peer in another netns: by index.
var otherNetNS = regexp.MustCompile(`^if[0-9]+$`)

// sweepHandedOverLinks removes the dcni* links a killed docker-cni left in
// the host (a test's own daemon, or one of a killed run: their state dirs
// are gone, so no daemon sweeps them), whose veth peer is in the host too:
// a live hand-over keeps a link there for milliseconds only, and the suite
// starts with no container on its networks. The compat cells and the leak
// checks count every dcni* link.
func sweepHandedOverLinks(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ip", "-o", "link", "show").Output()
	if err != nil {
		return fmt.Errorf("ip link: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasPrefix(f[1], "dcni") {
			continue
		}
		name, peer, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
		if otherNetNS.MatchString(peer) {
			continue // its peer is in another netns: in use
		}
		fmt.Fprintf(os.Stderr, "e2e: removing link %s a killed docker-cni left\n", name)
		if out, err := exec.CommandContext(ctx, "ip", "link", "del", name).CombinedOutput(); err != nil {
			return fmt.Errorf("delete link %s: %v: %s", name, err, out)
		}
	}
	return nil
}

// sweepDocker removes this engine's e2e-* containers and the e2e-* networks
// of the suite's driver, returning the IDs of the networks it removed.
func (e engine) sweepDocker() ([]string, error) {
	out, err := e.docker("ps", "-aq", "--filter", "name=^e2e-")
	if err != nil {
		return nil, fmt.Errorf("list containers: %v: %s", err, out)
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: removing %d container(s) an earlier run left on %s\n", len(ids), e.name)
		if out, err := e.docker(append([]string{"rm", "-f"}, ids...)...); err != nil {
			return nil, fmt.Errorf("remove containers: %v: %s", err, out)
		}
	}
	out, err = e.docker("network", "ls", "--no-trunc", "--filter", "name=^e2e-", "--format", "{{.ID}} {{.Driver}} {{.Name}}")
	if err != nil {
		return nil, fmt.Errorf("list networks: %v: %s", err, out)
	}
	var gone []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || !strings.HasPrefix(f[2], "e2e-") {
			continue
		}
		if f[1] != s.driver {
			// Its driver (the managed plugin) may be gone: Docker would
			// wait for it. TestInstallManagedPlugin removes its own.
			fmt.Fprintf(os.Stderr, "e2e: leaving network %s (driver %s) an earlier run left on %s\n", f[2], f[1], e.name)
			continue
		}
		fmt.Fprintf(os.Stderr, "e2e: removing network %s an earlier run left on %s\n", f[2], e.name)
		// With what is still on it: an example's container (its README
		// names it, not the suite).
		if ids, err := e.docker("ps", "-aq", "--filter", "network="+f[0]); err == nil && ids != "" {
			fmt.Fprintf(os.Stderr, "e2e: removing container(s) %s left on it\n", strings.Join(strings.Fields(ids), " "))
			if out, err := e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...); err != nil {
				return nil, fmt.Errorf("remove containers on network %s: %v: %s", f[2], err, out)
			}
		}
		if out, err := e.docker("network", "rm", f[0]); err != nil {
			return nil, fmt.Errorf("remove network %s: %v: %s", f[2], err, out)
		}
		gone = append(gone, f[0])
	}
	return gone, nil
}

// sweepNetwork removes the bridge docker-cni names after network id and
// the rules in docker-cni's chains whose comment names the network.
func sweepNetwork(ctx context.Context, id string) error {
	bridge := "cni-" + id[:10]
	if exec.CommandContext(ctx, "ip", "link", "show", bridge).Run() == nil {
		if out, err := exec.CommandContext(ctx, "ip", "link", "del", bridge).CombinedOutput(); err != nil {
			return fmt.Errorf("delete bridge %s: %v: %s", bridge, err, out)
		}
	}
	comment := "docker-cni network " + id[:12]
	for _, c := range []struct{ table, chain string }{
		{"filter", "DOCKER-CNI-FORWARD"},
		{"nat", "DOCKER-CNI-POSTROUTING"},
		{"filter", "DOCKER-USER"},
	} {
		out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-t", c.table, "-S", c.chain).Output()
		if err != nil {
			continue // no such chain
		}
		for _, rule := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(rule, "-A ") || !strings.Contains(rule, comment) {
				continue
			}
			args := append([]string{"-w", "5", "-t", c.table, "-D"}, cri.SplitRule(strings.TrimPrefix(rule, "-A "))...)
			if out, err := exec.CommandContext(ctx, "iptables", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("delete rule %q: %v: %s", rule, err, out)
			}
		}
	}
	return nil
}
