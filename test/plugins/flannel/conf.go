package main

// The pure half of the stand-in: the subnet file and the delegate conf.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
)

// subnetEnv is what flanneld writes to the subnet file.
type subnetEnv struct {
	networks, ip6Networks []*net.IPNet
	subnet, ip6Subnet     *net.IPNet
	mtu                   *uint
	ipMasq                *bool
}

func parseSubnetEnv(r io.Reader) (*subnetEnv, error) {
	env := &subnetEnv{}
	s := bufio.NewScanner(r)
	for s.Scan() {
		key, value, ok := strings.Cut(s.Text(), "=")
		if !ok {
			continue
		}
		var err error
		switch key {
		case "FLANNEL_NETWORK":
			env.networks, err = parseNetworks(value)
		case "FLANNEL_IPV6_NETWORK":
			env.ip6Networks, err = parseNetworks(value)
		case "FLANNEL_SUBNET":
			_, env.subnet, err = net.ParseCIDR(value)
		case "FLANNEL_IPV6_SUBNET":
			_, env.ip6Subnet, err = net.ParseCIDR(value)
		case "FLANNEL_MTU":
			var mtu uint64
			mtu, err = strconv.ParseUint(value, 10, 32)
			env.mtu = new(uint(mtu))
		case "FLANNEL_IPMASQ":
			env.ipMasq = new(value == "true")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	var missing []string
	if len(env.networks) == 0 && len(env.ip6Networks) == 0 {
		missing = append(missing, "FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK")
	}
	if env.subnet == nil && env.ip6Subnet == nil {
		missing = append(missing, "FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET")
	}
	if env.mtu == nil {
		missing = append(missing, "FLANNEL_MTU")
	}
	if env.ipMasq == nil {
		missing = append(missing, "FLANNEL_IPMASQ")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return env, nil
}

// parseNetworks parses a comma-separated CIDR list, dropping repeats.
func parseNetworks(value string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	seen := map[string]bool{}
	for _, cidr := range strings.Split(value, ",") {
		_, nw, err := net.ParseCIDR(cidr)
		if err != nil {
			return nil, err
		}
		if !seen[nw.String()] {
			seen[nw.String()] = true
			nets = append(nets, nw)
		}
	}
	return nets, nil
}

// delegateConf builds the conf the delegate plugin gets; it is pure.
func delegateConf(n *netConf, env *subnetEnv) (map[string]any, error) {
	d := map[string]any{}
	for k, v := range n.Delegate {
		d[k] = v
	}
	if t, ok := d["type"]; ok {
		if _, isString := t.(string); !isString {
			return nil, errors.New("delegate: type must be a string")
		}
	}
	for _, key := range []string{"name", "ipam"} {
		if _, ok := d[key]; ok {
			return nil, fmt.Errorf("delegate: %s must not be set, flannel sets it", key)
		}
	}
	if n.RuntimeConfig != nil {
		d["runtimeConfig"] = n.RuntimeConfig
	}
	d["name"] = n.Name
	setDefault(d, "type", "bridge")
	setDefault(d, "ipMasq", !*env.ipMasq)
	setDefault(d, "mtu", *env.mtu)
	if d["type"] == "bridge" {
		setDefault(d, "isGateway", true)
	}
	if n.CNIVersion != "" {
		d["cniVersion"] = n.CNIVersion
	}

	ipam := map[string]any{}
	for k, v := range n.IPAM {
		ipam[k] = v
	}
	setDefault(ipam, "type", "host-local")
	var ranges [][]map[string]string
	for _, sn := range []*net.IPNet{env.subnet, env.ip6Subnet} {
		if sn != nil {
			ranges = append(ranges, []map[string]string{{"subnet": sn.String()}})
		}
	}
	ipam["ranges"] = ranges
	routes := []types.Route{}
	if r, ok := ipam["routes"]; ok {
		raw, _ := json.Marshal(r)
		if err := json.Unmarshal(raw, &routes); err != nil {
			return nil, fmt.Errorf("ipam: parse routes: %w", err)
		}
	}
	for _, nw := range append(env.networks, env.ip6Networks...) {
		routes = append(routes, types.Route{Dst: *nw})
	}
	ipam["routes"] = routes
	d["ipam"] = ipam
	return d, nil
}

func setDefault(m map[string]any, key string, value any) {
	if _, ok := m[key]; !ok {
		m[key] = value
	}
}
