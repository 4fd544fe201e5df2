// Package hostfw manages the few host firewall rules docker-cni owns: accept
// rules in dockerd's DOCKER-USER chain for bound networks whose conflist has
// no firewall plugin. It runs iptables; rule content comes from translate.
package hostfw

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/docker-cni/docker-cni/translate"
)

// IPTables adds and removes rules with the iptables / ip6tables binaries.
type IPTables struct{}

func (IPTables) run(ctx context.Context, v6 bool, args ...string) (string, error) {
	bin := "iptables"
	if v6 {
		bin = "ip6tables"
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-w", "5"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// chainExists reports whether the filter table has the chain.
func (t IPTables) chainExists(ctx context.Context, v6 bool, chain string) bool {
	_, err := t.run(ctx, v6, "-t", "filter", "-S", chain)
	return err == nil
}

// Ensure inserts each rule at the top of chain unless it is there. It
// returns false, doing nothing, when the chain does not exist (no dockerd
// with iptables on this host: then nothing drops the traffic).
func (t IPTables) Ensure(ctx context.Context, chain string, rules []translate.AcceptRule) (bool, error) {
	for _, r := range rules {
		if !t.chainExists(ctx, r.V6, chain) {
			return false, nil
		}
		if _, err := t.run(ctx, r.V6, append([]string{"-t", "filter", "-C", chain}, r.Args...)...); err == nil {
			continue
		}
		if out, err := t.run(ctx, r.V6, append([]string{"-t", "filter", "-I", chain}, r.Args...)...); err != nil {
			return false, fmt.Errorf("insert %s rule %v: %v: %s", chain, r.Args, err, out)
		}
	}
	return true, nil
}

// Remove deletes each rule from chain, every copy of it; missing rules and
// chains are fine.
func (t IPTables) Remove(ctx context.Context, chain string, rules []translate.AcceptRule) error {
	for _, r := range rules {
		for i := 0; i < 16; i++ {
			if _, err := t.run(ctx, r.V6, append([]string{"-t", "filter", "-D", chain}, r.Args...)...); err != nil {
				break
			}
		}
	}
	return nil
}
