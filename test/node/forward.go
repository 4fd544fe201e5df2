package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// ipForward is the host's IPv4 forwarding switch (this process never
// leaves the host netns, so this is the host's).
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// forward counts the nodes that need the host's ip_forward: the first sets
// it to 1, the last puts back a 0 it found.
var forward struct {
	sync.Mutex
	holders int
	restore bool
}

func holdForward() error {
	forward.Lock()
	defer forward.Unlock()
	if forward.holders == 0 {
		b, err := os.ReadFile(ipForward)
		if err != nil {
			return fmt.Errorf("read host ip_forward: %w", err)
		}
		if strings.TrimSpace(string(b)) == "0" {
			if err := os.WriteFile(ipForward, []byte("1"), 0o644); err != nil {
				return fmt.Errorf("set host ip_forward=1: %w", err)
			}
			forward.restore = true
		}
	}
	forward.holders++
	return nil
}

func releaseForward() error {
	forward.Lock()
	defer forward.Unlock()
	forward.holders--
	if forward.holders > 0 || !forward.restore {
		return nil
	}
	forward.restore = false
	if err := os.WriteFile(ipForward, []byte("0"), 0o644); err != nil {
		return fmt.Errorf("restore host ip_forward=0: %w", err)
	}
	return nil
}

// rules are the host's FORWARD ACCEPT rules for n: traffic to and from its
// link and pod subnet (an overlay node has none) through its host veth,
// whatever the policy. Pure.
func (n *Node) rules() [][]string {
	comment := "docker-cni test/node " + n.Name
	var rules [][]string
	for _, p := range []netip.Prefix{n.PodSubnet, n.Link} {
		if !p.IsValid() {
			continue
		}
		rules = append(rules,
			[]string{"-o", n.HostIf, "-d", p.String(), "-m", "comment", "--comment", comment, "-j", "ACCEPT"},
			[]string{"-i", n.HostIf, "-s", p.String(), "-m", "comment", "--comment", comment, "-j", "ACCEPT"})
	}
	return rules
}

// acceptForward inserts rules at the top of the host's FORWARD chain.
func acceptForward(ctx context.Context, rules [][]string) error {
	for _, r := range rules {
		if err := iptables(ctx, append([]string{"-I", "FORWARD"}, r...)...); err != nil {
			return err
		}
	}
	return nil
}

// dropForward deletes every copy of rules from the host's FORWARD chain.
func dropForward(ctx context.Context, rules [][]string) error {
	var errs []error
	for _, r := range rules {
		for i := 0; i < 10 && iptables(ctx, append([]string{"-C", "FORWARD"}, r...)...) == nil; i++ {
			if err := iptables(ctx, append([]string{"-D", "FORWARD"}, r...)...); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// SetForwardPolicy sets the host's iptables FORWARD policy (e.g. "DROP",
// as dockerd sets it) and returns a func that puts the old one back; both
// do nothing when the policy already is the one asked for.
func SetForwardPolicy(ctx context.Context, policy string) (restore func(context.Context) error, err error) {
	out, err := iptablesOutput(ctx, "-S", "FORWARD")
	if err != nil {
		return nil, err
	}
	was := forwardPolicy(out)
	if was == "" {
		return nil, fmt.Errorf("no FORWARD policy in iptables -S FORWARD:\n%s", out)
	}
	if was == policy {
		return func(context.Context) error { return nil }, nil
	}
	if err := iptables(ctx, "-P", "FORWARD", policy); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return iptables(ctx, "-P", "FORWARD", was) }, nil
}

// forwardPolicy is the policy in `iptables -S FORWARD` output. Pure.
func forwardPolicy(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD" {
			return f[2]
		}
	}
	return ""
}

func iptables(ctx context.Context, args ...string) error {
	_, err := iptablesOutput(ctx, args...)
	return err
}

func iptablesOutput(ctx context.Context, args ...string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "iptables", append([]string{"-w", "10"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.String(), nil
}
