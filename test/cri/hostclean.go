package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` and (by default) containerd keep netns mounts.
const netnsDir = "/var/run/netns"

// HostSnapshot is what the host had before a test made its CNI network: the
// CNI-* iptables chains and whether /var/run/netns existed. Cleanup removes
// only what the test's network left beyond that, so chains other users of
// the machine share (CNI-FORWARD, CNI-HOSTPORT-*) stay when they were there.
type HostSnapshot struct {
	chains      map[string]bool // "iptables/filter/CNI-FORWARD"
	netnsDirWas bool
}

// iptablesTools are the families the CNI plugins program (the firewall
// plugin makes its chains in both even for an IPv4-only network).
var iptablesTools = []string{"iptables", "ip6tables"}

var iptablesTables = []string{"filter", "nat"}

// SnapshotHost records the host state Cleanup compares against.
func SnapshotHost(ctx context.Context) (*HostSnapshot, error) {
	s := &HostSnapshot{chains: map[string]bool{}}
	for _, tool := range iptablesTools {
		for _, table := range iptablesTables {
			dump, err := iptablesSave(ctx, tool, table)
			if err != nil {
				return nil, fmt.Errorf("snapshot host: %w", err)
			}
			for _, c := range parseSave(dump).chains {
				s.chains[tool+"/"+table+"/"+c] = true
			}
		}
	}
	_, err := os.Stat(netnsDir)
	s.netnsDirWas = err == nil
	return s, nil
}

// Cleanup removes what a test's CNI network left on the host: the bridge
// link, every iptables rule that names an address in subnet or the bridge,
// the CNI-* chains that appeared since the snapshot and are now empty (with
// the jumps to them), the given netns mounts if they are under
// /var/run/netns, and /var/run/netns itself if it is new and empty. It is
// safe to repeat.
func (s *HostSnapshot) Cleanup(ctx context.Context, bridge string, subnet netip.Prefix, netns ...string) error {
	var errs []error
	if link, err := netlink.LinkByName(bridge); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			errs = append(errs, fmt.Errorf("clean up: delete link %s: %w", bridge, err))
		}
	} else if !errors.As(err, new(netlink.LinkNotFoundError)) {
		errs = append(errs, fmt.Errorf("clean up: find link %s: %w", bridge, err))
	}
	for _, tool := range iptablesTools {
		for _, table := range iptablesTables {
			if err := s.cleanTable(ctx, tool, table, bridge, subnet); err != nil {
				errs = append(errs, fmt.Errorf("clean up: %w", err))
			}
		}
	}
	for _, p := range netns {
		if p == "" || filepath.Dir(p) != netnsDir {
			continue
		}
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("clean up: unmount netns %s: %w", p, err))
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("clean up: %w", err))
		}
	}
	if !s.netnsDirWas {
		os.Remove(netnsDir) // only succeeds when empty
	}
	return errors.Join(errs...)
}

func (s *HostSnapshot) cleanTable(ctx context.Context, tool, table, bridge string, subnet netip.Prefix) error {
	dump, err := iptablesSave(ctx, tool, table)
	if err != nil {
		return err
	}
	d := parseSave(dump)
	isNew := func(c string) bool {
		return strings.HasPrefix(c, "CNI-") && !s.chains[tool+"/"+table+"/"+c]
	}
	drop := staleChains(d, isNew, func(r rule) bool { return mentions(r, bridge, subnet) })
	var errs []error
	for _, r := range d.rules {
		if !drop[r.chain] && (mentions(r, bridge, subnet) || drop[r.target()]) {
			if err := iptables(ctx, tool, append([]string{"-t", table, "-D", r.chain}, r.args...)...); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for c := range drop {
		if err := iptables(ctx, tool, "-t", table, "-F", c); err != nil {
			errs = append(errs, err)
		}
	}
	for c := range drop {
		if err := iptables(ctx, tool, "-t", table, "-X", c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// staleChains are the chains to delete: new ones (isNew) whose rules are
// all ours or jumps to other such chains. Pure.
func staleChains(d saveDump, isNew func(string) bool, ours func(rule) bool) map[string]bool {
	cand := map[string]bool{}
	for _, c := range d.chains {
		if isNew(c) {
			cand[c] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, r := range d.rules {
			if cand[r.chain] && !ours(r) && !cand[r.target()] {
				delete(cand, r.chain)
				changed = true
			}
		}
	}
	return cand
}

// rule is one "-A chain args..." line of iptables-save.
type rule struct {
	chain string
	args  []string
}

// target is the rule's -j/-g chain or verdict.
func (r rule) target() string {
	for i := 0; i+1 < len(r.args); i++ {
		if r.args[i] == "-j" || r.args[i] == "-g" {
			return r.args[i+1]
		}
	}
	return ""
}

// mentions reports whether a rule names the bridge or an address in subnet.
func mentions(r rule, bridge string, subnet netip.Prefix) bool {
	for _, a := range r.args {
		if a == bridge {
			return true
		}
		// An address, prefix, address:port, or a range of them (a-b).
		for _, w := range strings.Split(strings.TrimPrefix(a, "!"), "-") {
			if subnet.Contains(addrOf(w)) {
				return true
			}
		}
	}
	return false
}

// addrOf is the address in w (an address, a prefix or an address:port), or
// the zero Addr.
func addrOf(w string) netip.Addr {
	if ip, err := netip.ParseAddr(w); err == nil {
		return ip
	}
	if p, err := netip.ParsePrefix(w); err == nil {
		return p.Addr()
	}
	if ap, err := netip.ParseAddrPort(w); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}

// saveDump is one table of iptables-save output.
type saveDump struct {
	chains []string
	rules  []rule
}

// parseSave parses one table of iptables-save output. Pure.
func parseSave(out string) saveDump {
	var d saveDump
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 {
				d.chains = append(d.chains, f[0])
			}
		case strings.HasPrefix(line, "-A "):
			if w := SplitRule(line[3:]); len(w) > 0 {
				d.rules = append(d.rules, rule{chain: w[0], args: w[1:]})
			}
		}
	}
	return d
}

// SplitRule splits an iptables-save (or iptables -S) rule into words, honouring the double
// quotes (and \" inside them) it puts around comments. Pure.
func SplitRule(s string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quoted && c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case c == '"':
			quoted = !quoted
			inWord = true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func iptablesSave(ctx context.Context, tool, table string) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, tool+"-save", "-t", table)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s-save -t %s: %w: %s", tool, table, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.String(), nil
}

func iptables(ctx context.Context, tool string, args ...string) error {
	out, err := exec.CommandContext(ctx, tool, append([]string{"-w", "10"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
