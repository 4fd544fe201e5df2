package translate

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/containernetworking/cni/pkg/version"

	"github.com/docker-cni/docker-cni/cnm"
)

// OptNetwork binds a Docker network to the CNI network (conflist) of that
// name in the CNI conf dir. Docker hands IPAM options (--ipam-opt) to
// RequestPool before the network driver sees -o options, so --ipam-opt is the
// spelling that works alone; -o is accepted when it agrees.
const OptNetwork = "cni.network"

// OptVersion is the CNI spec version of the network: the version docker-cni
// writes into a generated conflist, or, with a binding, the version the
// bound conflist must declare. Given as -o, it shows in docker network
// inspect, and docker-cni refuses it rather than let it disagree.
const OptVersion = "cni.version"

// OptJoin picks the Join mode on engines that make the container's netns
// before Join: "handover" (the default) or "direct".
const OptJoin = "cni.join"

// NetworkOptions are the parsed options of a CreateNetwork request.
type NetworkOptions struct {
	// CNINetwork is the -o cni.network value, if any.
	CNINetwork string
	// CNIVersion is the -o cni.version value, if any.
	CNIVersion string
	// Join is the -o cni.join value, if any.
	Join JoinMode
	// Args are the -o cni.args, if any.
	Args       NetworkArgs `json:",omitzero"`
	BridgeName string
	MTU        int
	Internal   bool
	IPv6       bool
}

// knownGeneric lists the -o options the cni driver understands.
var knownGeneric = map[string]bool{
	OptNetwork:        true,
	OptJoin:           true,
	OptVersion:        true,
	OptArgs:           true,
	cnm.OptBridgeName: true,
	cnm.OptMTU:        true,
}

// ChainVersions are the CNI spec versions libcni supports that can run a
// plugin list (0.3.0 and newer).
func ChainVersions() []string {
	var out []string
	for _, v := range version.All.SupportedVersions() {
		if ok, err := version.GreaterThanOrEqualTo(v, "0.3.0"); err == nil && ok {
			out = append(out, v)
		}
	}
	return out
}

// ParseNetworkOptions reads the Options of a CreateNetwork request. Unknown
// -o options are refused by name rather than ignored.
func ParseNetworkOptions(opts map[string]any) (NetworkOptions, error) {
	var no NetworkOptions
	var err error
	if no.Internal, err = boolOpt(opts, cnm.OptInternal); err != nil {
		return no, err
	}
	if no.IPv6, err = boolOpt(opts, cnm.OptEnableIPv6); err != nil {
		return no, err
	}
	generic, _ := opts[cnm.OptGeneric].(map[string]any)
	var unknown []string
	// In key order, so that the same options always give the same error.
	for _, k := range slices.Sorted(maps.Keys(generic)) {
		v := generic[k]
		if !knownGeneric[k] {
			unknown = append(unknown, k)
			continue
		}
		s, ok := v.(string)
		if !ok {
			return no, fmt.Errorf("option %s: want a string, got %T", k, v)
		}
		if err := no.set(k, s); err != nil {
			return no, err
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		supported := make([]string, 0, len(knownGeneric))
		for k := range knownGeneric {
			supported = append(supported, k)
		}
		sort.Strings(supported)
		return no, fmt.Errorf("option %s is not supported by the cni driver (supported: %s)",
			strings.Join(unknown, ", "), strings.Join(supported, ", "))
	}
	return no, nil
}

// set reads one known -o option.
func (no *NetworkOptions) set(k, s string) error {
	var err error
	switch k {
	case OptNetwork:
		no.CNINetwork = s
	case OptVersion:
		if !slices.Contains(ChainVersions(), s) {
			return fmt.Errorf("option %s: %q is not a CNI spec version that can chain plugins (%s)", k, s, strings.Join(ChainVersions(), ", "))
		}
		no.CNIVersion = s
	case OptArgs:
		no.Args, err = ParseNetworkArgs(s)
	case OptJoin:
		if s != string(JoinHandover) && s != string(JoinDirect) {
			return fmt.Errorf("option %s: %q is not a join mode (%s or %s)", k, s, JoinHandover, JoinDirect)
		}
		no.Join = JoinMode(s)
	case cnm.OptBridgeName:
		if err := ValidIfName(s); err != nil {
			return fmt.Errorf("option %s: %w", k, err)
		}
		no.BridgeName = s
	case cnm.OptMTU:
		mtu, err := strconv.Atoi(s)
		if err != nil || mtu < 68 || mtu > 65535 {
			return fmt.Errorf("option %s: %q is not an MTU between 68 and 65535", k, s)
		}
		no.MTU = mtu
	}
	return err
}

func boolOpt(opts map[string]any, key string) (bool, error) {
	switch v := opts[key].(type) {
	case nil:
		return false, nil
	case bool:
		return v, nil
	case string:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("option %s: %q is not a boolean", key, v)
		}
		return b, nil
	default:
		return false, fmt.Errorf("option %s: want a boolean, got %T", key, v)
	}
}

// CheckBinding reconciles the two spellings of the binding option: poolBinding
// comes from --ipam-opt cni.network (seen by RequestPool), netBinding from
// -o cni.network (seen by CreateNetwork). dockerIPAM is true when Docker's own
// IPAM driver serves the network.
func CheckBinding(poolBinding, netBinding string, dockerIPAM bool) (string, error) {
	switch {
	case netBinding != "" && dockerIPAM:
		return "", fmt.Errorf("network bound to CNI network %q must use --ipam-driver cni --ipam-opt %s=%s: "+
			"Docker's built-in IPAM would hand out addresses that the CNI network's own IPAM store (and its pods) do not know about",
			netBinding, OptNetwork, netBinding)
	case netBinding != "" && poolBinding == "":
		return "", fmt.Errorf("-o %s=%s needs --ipam-opt %s=%s as well: Docker asks the IPAM driver for the pool before the network driver sees -o options",
			OptNetwork, netBinding, OptNetwork, netBinding)
	case netBinding != "" && netBinding != poolBinding:
		return "", fmt.Errorf("-o %s=%s disagrees with --ipam-opt %s=%s: give one (--ipam-opt is enough)",
			OptNetwork, netBinding, OptNetwork, poolBinding)
	}
	return poolBinding, nil
}

// EndpointIfName reads the interface name an endpoint asks for with
// --driver-opt com.docker.network.endpoint.ifname ("" when none).
func EndpointIfName(opts map[string]any) (string, error) {
	v, ok := opts[cnm.OptIfname]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("option %s: want a string, got %T", cnm.OptIfname, v)
	}
	if err := ValidIfName(s); err != nil {
		return "", fmt.Errorf("option %s: %w", cnm.OptIfname, err)
	}
	return s, nil
}

// ValidIfName checks a Linux interface name.
func ValidIfName(name string) error {
	if name == "" || len(name) > 15 || name == "." || name == ".." {
		return fmt.Errorf("%q is not a valid interface name (1 to 15 characters)", name)
	}
	if strings.ContainsAny(name, "/: \t\n") {
		return fmt.Errorf("%q is not a valid interface name (no '/', ':' or spaces)", name)
	}
	return nil
}
