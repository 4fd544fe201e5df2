package translate

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnm"
)

// DstPrefix is the prefix libnetwork gives the interfaces it moves into a
// container (eth0, eth1, ...), as for its own drivers.
const DstPrefix = "eth"

// JoinMode says how Join hands the CNI attachment to Docker.
type JoinMode string

const (
	// JoinHandover: the sandbox netns exists at Join (Docker Engine >= 28);
	// the chain runs in it, then the interface is handed to libnetwork (out
	// to the host and back, under the same name), so that libnetwork knows
	// it: it names its own drivers' interfaces after it, and routes the
	// container's default route and published ports as Docker chooses.
	JoinHandover JoinMode = "handover"
	// JoinDirect: the sandbox netns exists at Join, the chain runs straight
	// into it, and Docker is told to move nothing (-o cni.join=direct).
	JoinDirect JoinMode = "direct"
	// JoinMove: the sandbox netns does not exist yet (older engines); the
	// chain runs in a scratch netns and the interface is handed to
	// libnetwork to move into the sandbox when it is made.
	JoinMove JoinMode = "move"
)

// DirectJoinResponse is the answer when the chain configured the sandbox
// itself: no interface, no gateway (a returned gateway would make libnetwork
// add a second default route), and no docker_gwbridge.
func DirectJoinResponse() *cnm.JoinResponse {
	return &cnm.JoinResponse{DisableGatewayService: true}
}

// MoveJoinResponse is the answer when libnetwork must move the interface the
// chain created (now named srcName in the host netns) into the sandbox. The
// addresses Docker sets come from IPAM (the same ones the chain used); the
// gateway and routes come from the CNI result, because moving the link
// between namespaces drops them.
func MoveJoinResponse(res *current.Result, ifName, srcName string, internal bool) (*cnm.JoinResponse, error) {
	jr := &cnm.JoinResponse{
		InterfaceName:         &cnm.InterfaceName{SrcName: srcName, DstPrefix: DstPrefix},
		DisableGatewayService: true,
	}
	gw4, gw6 := ResultGateways(res, ifName)
	for _, r := range res.Routes {
		if r == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		v4 := r.Dst.IP.To4() != nil
		if ones == 0 {
			// A default route: libnetwork adds it from Gateway.
			gw := gw4
			if !v4 {
				gw = gw6
			}
			if r.GW != nil {
				gw = r.GW.String()
			}
			if gw == "" {
				return nil, fmt.Errorf("CNI result has a default route %s with no gateway", r.Dst.String())
			}
			if v4 {
				jr.Gateway = gw
			} else {
				jr.GatewayIPv6 = gw
			}
			continue
		}
		// A route without gw goes through its family's gateway, as the
		// plugins install it; it is on-link only when there is none.
		sr := cnm.StaticRoute{Destination: (&net.IPNet{IP: r.Dst.IP, Mask: r.Dst.Mask}).String(), RouteType: cnm.RouteConnected}
		gw := gw4
		if !v4 {
			gw = gw6
		}
		if r.GW != nil {
			gw = r.GW.String()
		}
		if gw != "" {
			sr.RouteType, sr.NextHop = cnm.RouteNextHop, gw
		}
		jr.StaticRoutes = append(jr.StaticRoutes, sr)
	}
	if internal {
		jr.Gateway, jr.GatewayIPv6 = "", ""
	}
	return jr, nil
}

// ResultGateways are the first IPv4 and IPv6 gateways a CNI result gives the
// container interface ifName ("" where it gives none).
func ResultGateways(res *current.Result, ifName string) (gw4, gw6 string) {
	ifIndex := -1
	for i, iface := range res.Interfaces {
		if iface.Name == ifName && iface.Sandbox != "" {
			ifIndex = i
		}
	}
	for _, ipc := range res.IPs {
		if ipc.Interface != nil && ifIndex >= 0 && *ipc.Interface != ifIndex {
			continue
		}
		if ipc.Gateway == nil {
			continue
		}
		if ipc.Address.IP.To4() != nil && gw4 == "" {
			gw4 = ipc.Gateway.String()
		} else if ipc.Address.IP.To4() == nil && gw6 == "" {
			gw6 = ipc.Gateway.String()
		}
	}
	return gw4, gw6
}

// NextIfName picks the interface name for a new attachment in a sandbox
// that already holds the given links: the lowest free ethN.
func NextIfName(existing []string) string {
	used := map[int]bool{}
	for _, name := range existing {
		if n, ok := strings.CutPrefix(name, DstPrefix); ok {
			if i, err := strconv.Atoi(n); err == nil {
				used[i] = true
			}
		}
	}
	i := 0
	for used[i] {
		i++
	}
	return DstPrefix + strconv.Itoa(i)
}

// HostIfName is the temporary name, in the host netns, of an interface
// waiting for libnetwork to move it into a sandbox.
func HostIfName(endpointID string) string {
	id := endpointID
	if len(id) > 11 {
		id = id[:11]
	}
	return "dcni" + id
}

// ShortID shortens a Docker ID for messages, as docker does.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
