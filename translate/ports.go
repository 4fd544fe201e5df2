package translate

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/docker-cni/docker-cni/cnm"
)

// PortBinding is one entry of Docker's com.docker.network.portmap option.
type PortBinding struct {
	Proto       int
	IP          string
	Port        int
	HostIP      string
	HostPort    int
	HostPortEnd int
}

// PortMapping is one entry of the CNI portMappings capability.
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
	HostIP        string `json:"hostIP,omitempty"`
}

func (m PortMapping) String() string {
	h := m.HostIP
	if h == "" {
		h = "0.0.0.0"
	}
	return fmt.Sprintf("%s:%d->%d/%s", h, m.HostPort, m.ContainerPort, m.Protocol)
}

// Docker's default range for host ports it picks itself.
const (
	EphemeralFirst = 49153
	EphemeralLast  = 60999
)

var protoNames = map[int]string{6: "tcp", 17: "udp", 132: "sctp"}

// ParsePortBindings reads the port bindings Docker puts in Join,
// CreateEndpoint and ProgramExternalConnectivity options.
func ParsePortBindings(opts map[string]any) ([]PortBinding, error) {
	raw, ok := opts[cnm.OptPortMap]
	if !ok || raw == nil {
		return nil, nil
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var bs []PortBinding
	if err := json.Unmarshal(b, &bs); err != nil {
		return nil, fmt.Errorf("option %s: %w", cnm.OptPortMap, err)
	}
	return bs, nil
}

// PortKey identifies a host port for clash checks.
type PortKey struct {
	Proto  string
	HostIP string
	Port   int
}

// PlanPorts turns Docker's bindings into CNI port mappings, choosing the
// host port where Docker left the choice to the driver (0, or a range):
// portmap refuses port 0. taken holds ports docker-cni already published;
// free asks the host whether a port can be bound.
func PlanPorts(bs []PortBinding, taken map[PortKey]bool, free func(PortKey) bool) ([]PortMapping, error) {
	used := hostPorts{}
	for k := range taken {
		used.add(k)
	}
	var out []PortMapping
	for _, b := range bs {
		proto, first, last, explicit, err := checkBinding(b)
		if err != nil {
			return nil, err
		}
		chosen := 0
		for p := first; p <= last && chosen == 0; p++ {
			k := PortKey{Proto: proto, HostIP: b.HostIP, Port: p}
			if !used.clashes(k) && free(k) {
				chosen = p
			}
		}
		if chosen == 0 {
			if explicit {
				return nil, fmt.Errorf("host port %d/%s is already in use", first, proto)
			}
			return nil, fmt.Errorf("no free host port in %d-%d/%s for container port %d", first, last, proto, b.Port)
		}
		used.add(PortKey{Proto: proto, HostIP: b.HostIP, Port: chosen})
		out = append(out, PortMapping{HostPort: chosen, ContainerPort: b.Port, Protocol: proto, HostIP: b.HostIP})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].HostPort < out[j].HostPort })
	return out, nil
}

// checkBinding validates one binding and returns its protocol name and the
// host ports it may take (explicit: exactly one, given by the user).
func checkBinding(b PortBinding) (proto string, first, last int, explicit bool, err error) {
	proto, ok := protoNames[b.Proto]
	if !ok {
		return "", 0, 0, false, fmt.Errorf("published port %d: protocol %d is not supported (tcp, udp, sctp)", b.Port, b.Proto)
	}
	if b.Port <= 0 || b.Port > 65535 {
		return "", 0, 0, false, fmt.Errorf("published port %d/%s: not a port", b.Port, proto)
	}
	if b.HostIP != "" {
		if _, err := netip.ParseAddr(b.HostIP); err != nil {
			return "", 0, 0, false, fmt.Errorf("published port %d/%s: host IP %q: %w", b.Port, proto, b.HostIP, err)
		}
	}
	first, last = b.HostPort, b.HostPortEnd
	explicit = first != 0 && (last == 0 || last == first)
	switch {
	case first == 0:
		first, last = EphemeralFirst, EphemeralLast
	case last < first:
		last = first
	}
	if first < 1 || last > 65535 {
		return "", 0, 0, false, fmt.Errorf("published port %d/%s: host port %d-%d is not a port range", b.Port, proto, first, last)
	}
	return proto, first, last, explicit, nil
}

// hostPorts are published host ports by protocol and port, with the host
// addresses they are published on ("" for all).
type hostPorts map[PortKey][]string

func (h hostPorts) add(k PortKey) {
	at := PortKey{Proto: k.Proto, Port: k.Port}
	h[at] = append(h[at], k.HostIP)
}

// clashes reports whether k would take a port already published on the
// same address, or where either side is all addresses.
func (h hostPorts) clashes(k PortKey) bool {
	for _, ip := range h[PortKey{Proto: k.Proto, Port: k.Port}] {
		if ip == k.HostIP || anyAddr(ip) || anyAddr(k.HostIP) {
			return true
		}
	}
	return false
}

// anyAddr reports whether a host IP means every address.
func anyAddr(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return ip == "" || (err == nil && a.IsUnspecified())
}

// PortMapPlugin is one plugin of a chain that publishes ports, ready to run
// on its own.
type PortMapPlugin struct {
	Type string
	// Conf is the plugin's configuration with name, cniVersion, prevResult
	// and runtimeConfig.portMappings filled in.
	Conf []byte
}

// PortMapPlugins returns, for every plugin of the chain declaring the
// portMappings capability, the configuration that publishes mappings for a
// container whose ADD returned prevResult.
// own adds portmap when the chain has no such plugin: a generated chain
// leaves publishing to docker-cni, which runs portmap only for the
// containers that publish ports.
func (pl *ParsedList) PortMapPlugins(prevResult json.RawMessage, mappings []PortMapping, own bool) ([]PortMapPlugin, error) {
	plugins := pl.plugins
	if own && !pl.HasCapability("portMappings") {
		plugins = append(slices.Clone(plugins), map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}})
	}
	var out []PortMapPlugin
	for _, p := range plugins {
		caps, _ := p["capabilities"].(map[string]any)
		if on, _ := caps["portMappings"].(bool); !on {
			continue
		}
		conf := make(map[string]any, len(p)+4)
		for k, v := range p {
			if k != "capabilities" {
				conf[k] = v
			}
		}
		conf["name"], conf["cniVersion"] = pl.Name, pl.CNIVersion
		conf["prevResult"] = prevResult
		conf["runtimeConfig"] = map[string]any{"portMappings": mappings}
		b, err := json.Marshal(conf)
		if err != nil {
			return nil, err
		}
		out = append(out, PortMapPlugin{Type: p["type"].(string), Conf: b})
	}
	if len(out) == 0 && len(mappings) > 0 {
		return nil, fmt.Errorf("CNI network %q has no plugin with the portMappings capability (e.g. portmap): cannot publish ports", pl.Name)
	}
	return out, nil
}

// HasDefaultRoute reports whether the chain gives the container a default
// route of the family: in its ipam routes, or by the main plugin's (or
// flannel's delegate's) isDefaultGateway.
func (pl *ParsedList) HasDefaultRoute(v6 bool) bool {
	if pl.defaultGateway() {
		return true
	}
	ipam := pl.derived
	if ipam == nil {
		ipam, _ = pl.ownIPAM()
	}
	routes, _ := ipam["routes"].([]any)
	for _, r := range routes {
		m, _ := r.(map[string]any)
		dst, _ := m["dst"].(string)
		if p, err := netip.ParsePrefix(dst); err == nil && p.Bits() == 0 && p.Addr().Is6() == v6 {
			return true
		}
	}
	return false
}
