package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// premises are the host settings the suite sets for itself, as most hosts
// running dockerd have them, whatever an earlier run or this machine left:
// bridged traffic passes iptables (br_netfilter), IPv4 forwarding is on, and
// the FORWARD policy is DROP (dockerd sets it only when it turns forwarding on
// itself). restore puts back what was there before.
type premises struct {
	sysctls map[string]string
	policy  string
}

var hostSysctls = map[string]string{
	"net/bridge/bridge-nf-call-iptables":  "1",
	"net/bridge/bridge-nf-call-ip6tables": "1",
	"net/ipv4/ip_forward":                 "1",
}

// setPremises loads br_netfilter and sets the sysctls and the FORWARD
// policy, remembering the old values.
func setPremises(ctx context.Context) (*premises, error) {
	if _, err := os.Stat("/proc/sys/net/bridge"); err != nil {
		if out, err := exec.CommandContext(ctx, "modprobe", "br_netfilter").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("modprobe br_netfilter: %v: %s", err, out)
		}
	}
	p := &premises{sysctls: map[string]string{}}
	for k, v := range hostSysctls {
		old, err := os.ReadFile("/proc/sys/" + k)
		if err != nil {
			return p, err
		}
		p.sysctls[k] = strings.TrimSpace(string(old))
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			return p, fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-S", "FORWARD").Output()
	if err != nil {
		return p, fmt.Errorf("iptables -S FORWARD: %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	p.policy = strings.TrimPrefix(first, "-P FORWARD ")
	if out, err := exec.CommandContext(ctx, "iptables", "-w", "5", "-P", "FORWARD", "DROP").CombinedOutput(); err != nil {
		return p, fmt.Errorf("iptables -P FORWARD DROP: %v: %s", err, out)
	}
	return p, nil
}

// restore puts the host settings back.
func (p *premises) restore() {
	if p == nil {
		return
	}
	for k, v := range p.sysctls {
		os.WriteFile("/proc/sys/"+k, []byte(v), 0o644)
	}
	if p.policy == "ACCEPT" || p.policy == "DROP" {
		exec.Command("iptables", "-w", "5", "-P", "FORWARD", p.policy).Run()
	}
}
