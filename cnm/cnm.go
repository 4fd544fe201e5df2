// Package cnm holds the wire vocabulary of Docker's remote network and IPAM
// driver protocols that github.com/docker/go-plugins-helpers does not model
// exactly: method paths, the option keys Docker sends, and the few responses
// whose shape the helpers get wrong for our purposes.
//
// It is data only: no behaviour, no I/O.
package cnm

// Method paths Docker calls on a remote plugin. Each is an HTTP POST with a
// JSON body; the reply is JSON with Content-Type DefaultContentType.
const (
	PathActivate = "/Plugin.Activate"

	PathNetCapabilities      = "/NetworkDriver.GetCapabilities"
	PathCreateNetwork        = "/NetworkDriver.CreateNetwork"
	PathAllocateNetwork      = "/NetworkDriver.AllocateNetwork"
	PathDeleteNetwork        = "/NetworkDriver.DeleteNetwork"
	PathFreeNetwork          = "/NetworkDriver.FreeNetwork"
	PathCreateEndpoint       = "/NetworkDriver.CreateEndpoint"
	PathDeleteEndpoint       = "/NetworkDriver.DeleteEndpoint"
	PathEndpointOperInfo     = "/NetworkDriver.EndpointOperInfo"
	PathJoin                 = "/NetworkDriver.Join"
	PathLeave                = "/NetworkDriver.Leave"
	PathDiscoverNew          = "/NetworkDriver.DiscoverNew"
	PathDiscoverDelete       = "/NetworkDriver.DiscoverDelete"
	PathProgramExternalConn  = "/NetworkDriver.ProgramExternalConnectivity"
	PathRevokeExternalConn   = "/NetworkDriver.RevokeExternalConnectivity"
	PathIpamCapabilities     = "/IpamDriver.GetCapabilities"
	PathDefaultAddressSpaces = "/IpamDriver.GetDefaultAddressSpaces"
	PathRequestPool          = "/IpamDriver.RequestPool"
	PathReleasePool          = "/IpamDriver.ReleasePool"
	PathRequestAddress       = "/IpamDriver.RequestAddress"
	PathReleaseAddress       = "/IpamDriver.ReleaseAddress"
)

// DefaultContentType is the media type of every plugin request and reply.
const DefaultContentType = "application/vnd.docker.plugins.v1.1+json"

// Option keys Docker puts in request Options maps.
const (
	// OptGeneric holds the `docker network create -o k=v` options.
	OptGeneric = "com.docker.network.generic"
	// OptEnableIPv6 is true when the network was created with --ipv6.
	OptEnableIPv6 = "com.docker.network.enable_ipv6"
	// OptInternal is true when the network was created with --internal.
	OptInternal = "com.docker.network.internal"
	// OptMTU is the `-o com.docker.network.driver.mtu=N` driver option.
	OptMTU = "com.docker.network.driver.mtu"
	// OptBridgeName is the `-o com.docker.network.bridge.name=NAME` option.
	OptBridgeName = "com.docker.network.bridge.name"
	// OptIfname is the endpoint option (--driver-opt, Docker 28+) naming
	// the container's interface.
	OptIfname = "com.docker.network.endpoint.ifname"
	// OptPortMap carries the endpoint's published ports (-p).
	OptPortMap = "com.docker.network.portmap"
	// OptExposedPorts carries the endpoint's exposed ports.
	OptExposedPorts = "com.docker.network.endpoint.exposedports"
	// OptEndpointName is the container name; newer engines send it in
	// RequestAddress options.
	OptEndpointName = "com.docker.network.endpoint.name"
	// OptRequestAddressType marks the gateway address request.
	OptRequestAddressType = "RequestAddressType"
	// RequestAddressTypeGateway is the value of OptRequestAddressType for
	// the gateway request.
	RequestAddressTypeGateway = "com.docker.network.gateway"
)

// Address spaces the IPAM driver answers GetDefaultAddressSpaces with; the
// network driver tells its pools from Docker's own by them.
const (
	LocalSpace  = "CniLocal"
	GlobalSpace = "CniGlobal"
)

// BadRequest is a request that lacks what its call needs: the server
// answers it 400 with Msg. Docker's plugin client resends a call with its
// already-read, empty body after a transport error (a plugin restarted
// mid-call), so an empty request must be refused, never taken as done.
type BadRequest struct{ Msg string }

func (e BadRequest) Error() string { return e.Msg }

// MissingID is the BadRequest of a call whose request lacks an ID.
func MissingID(call, what string) error {
	return BadRequest{Msg: call + ": " + what + " (an empty request is what Docker resends after docker-cni restarted mid-call)"}
}

// ActivateResponse answers Plugin.Activate.
type ActivateResponse struct {
	Implements []string
}

// InterfaceName names the interface a driver created for libnetwork to move
// into the sandbox and rename to DstName or, when that is empty (or the
// engine predates it, as 20.10 does), to DstPrefix plus an index.
type InterfaceName struct {
	SrcName   string
	DstPrefix string
	DstName   string `json:",omitempty"`
}

// StaticRoute is a route libnetwork adds in the sandbox. RouteType 0 is a
// route through NextHop, 1 a connected route.
type StaticRoute struct {
	Destination string
	RouteType   int
	NextHop     string `json:",omitempty"`
}

// Route types of StaticRoute.
const (
	RouteNextHop   = 0
	RouteConnected = 1
)

// JoinResponse answers NetworkDriver.Join. A nil InterfaceName tells
// libnetwork that the driver configured the sandbox itself: nothing is moved
// and no address is set.
type JoinResponse struct {
	InterfaceName         *InterfaceName `json:",omitempty"`
	Gateway               string         `json:",omitempty"`
	GatewayIPv6           string         `json:",omitempty"`
	StaticRoutes          []StaticRoute  `json:",omitempty"`
	DisableGatewayService bool
}

// EndpointOperInfoResponse answers NetworkDriver.EndpointOperInfo.
type EndpointOperInfoResponse struct {
	Value map[string]any
}

// ErrorResponse is the error envelope of the network driver protocol; Docker
// decodes every non-200 reply with it.
type ErrorResponse struct {
	Err string
}

// IPAMErrorResponse is the error field of IPAM replies.
type IPAMErrorResponse struct {
	Error string
}
