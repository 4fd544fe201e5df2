package translate

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultFlannelSubnetFile is where flanneld writes the node's lease, and
// flannel's CNI plugin reads it, unless its conf says subnetFile.
const DefaultFlannelSubnetFile = "/run/flannel/subnet.env"

// SubnetEnv is what flanneld tells a node's CNI plugin in its subnet file.
type SubnetEnv struct {
	// Networks are the cluster's pod networks (FLANNEL_NETWORK,
	// FLANNEL_IPV6_NETWORK); Subnets the node's leases out of them
	// (FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET), masked.
	Networks []netip.Prefix
	Subnets  []netip.Prefix
	MTU      int
	// IPMasq says flanneld masquerades itself, so the delegate must not.
	IPMasq bool
}

// ParseSubnetEnv reads a flannel subnet file: KEY=VALUE lines, as flannel's
// CNI plugin reads them (networks are comma-separated lists).
func ParseSubnetEnv(b []byte) (SubnetEnv, error) {
	var env SubnetEnv
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		if err := env.set(k, v); err != nil {
			return SubnetEnv{}, err
		}
	}
	switch {
	case len(env.Networks) == 0:
		return SubnetEnv{}, fmt.Errorf("no FLANNEL_NETWORK or FLANNEL_IPV6_NETWORK")
	case len(env.Subnets) == 0:
		return SubnetEnv{}, fmt.Errorf("no FLANNEL_SUBNET or FLANNEL_IPV6_SUBNET")
	}
	return env, nil
}

func (env *SubnetEnv) set(k, v string) error {
	switch k {
	case "FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK":
		for _, s := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			env.Networks = append(env.Networks, p.Masked())
		}
	case "FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET":
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		env.Subnets = append(env.Subnets, p.Masked())
	case "FLANNEL_MTU":
		mtu, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("FLANNEL_MTU %q: %w", v, err)
		}
		env.MTU = mtu
	case "FLANNEL_IPMASQ":
		env.IPMasq = v == "true"
	}
	return nil
}

// FlannelSubnetFile is the subnet file the chain's flannel plugin reads;
// ok is false when the main plugin is not flannel's.
func (pl *ParsedList) FlannelSubnetFile() (path string, ok bool) {
	if !pl.flannel {
		return "", false
	}
	if f, _ := pl.mainPlugin()["subnetFile"].(string); f != "" {
		return f, true
	}
	return DefaultFlannelSubnetFile, true
}

// WithSubnetEnv gives a flannel chain the node's subnet file, from which
// its IPAM is known: the ipam section flannel hands its delegate, as
// flannel's plugin builds it (its own ipam keys, type host-local unless
// given, one range per subnet, its routes plus one per network). It does
// nothing for other chains.
func (pl *ParsedList) WithSubnetEnv(env SubnetEnv) error {
	if !pl.flannel {
		return nil
	}
	own, err := pl.ownIPAM()
	if err != nil {
		return err
	}
	ipam := map[string]any{"type": "host-local"}
	for k, v := range own {
		ipam[k] = v
	}
	var ranges []any
	for _, s := range env.Subnets {
		ranges = append(ranges, []any{map[string]any{"subnet": s.String()}})
	}
	routes, _ := own["routes"].([]any)
	routes = append([]any{}, routes...)
	for _, n := range env.Networks {
		routes = append(routes, map[string]any{"dst": n.String()})
	}
	ipam["ranges"], ipam["routes"] = ranges, routes
	pl.derived = ipam
	return nil
}
