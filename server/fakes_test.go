package server_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/server"
)

var (
	_ server.NetworkDriver = (*fakeNet)(nil)
	_ server.IPAMDriver    = (*fakeIPAM)(nil)
)

// call is one driver method invocation: the method's path and the request
// the server decoded for it.
type call struct {
	Path string
	Req  any
}

// recorder is shared by the two fakes: it records calls in order and makes
// the methods named in errs fail and those in panics panic.
type recorder struct {
	mu     sync.Mutex
	calls  []call
	errs   map[string]error
	panics map[string]any
	// nilResponses makes every method answer (nil, nil).
	nilResponses bool
	// discard keeps no calls (for the fuzz test).
	discard bool
}

func newFakes() (*recorder, *fakeNet, *fakeIPAM) {
	r := &recorder{errs: map[string]error{}, panics: map[string]any{}}
	return r, &fakeNet{r}, &fakeIPAM{r}
}

func (r *recorder) record(path string, req any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.discard {
		r.calls = append(r.calls, call{path, req})
	}
	if p, ok := r.panics[path]; ok {
		panic(p)
	}
	return r.errs[path]
}

func (r *recorder) takeCalls() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func answer[Resp any](r *recorder, path string, req any, resp Resp) (Resp, error) {
	var zero Resp
	if err := r.record(path, req); err != nil {
		return zero, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nilResponses {
		return zero, nil
	}
	return resp, nil
}

// The canned answers of the fakes, and how each must reach Docker.
var (
	netCaps      = &network.CapabilitiesResponse{Scope: network.LocalScope, ConnectivityScope: network.LocalScope}
	allocResp    = &network.AllocateNetworkResponse{Options: map[string]string{"k": "v"}}
	endpointResp = &network.CreateEndpointResponse{}
	operInfo     = &cnm.EndpointOperInfoResponse{Value: map[string]any{"cni.addresses": []string{"10.99.0.2/24"}}}
	joinResp     = &cnm.JoinResponse{
		InterfaceName:         &cnm.InterfaceName{SrcName: "dcnicf5dd77156b", DstPrefix: "eth"},
		Gateway:               "10.99.0.1",
		StaticRoutes:          []cnm.StaticRoute{{Destination: "10.50.0.0/16", RouteType: cnm.RouteConnected}},
		DisableGatewayService: true,
	}
	ipamCaps    = &ipam.CapabilitiesResponse{RequiresMACAddress: false}
	spaces      = &ipam.AddressSpacesResponse{LocalDefaultAddressSpace: "CniLocal", GlobalDefaultAddressSpace: "CniGlobal"}
	poolResp    = &ipam.RequestPoolResponse{PoolID: "docker-cni-10.99.0.0-24/1a2b3c4d", Pool: "10.99.0.0/24"}
	addressResp = &ipam.RequestAddressResponse{Address: "10.99.0.2/24"}
)

// wantReplies are the exact bodies Docker receives for the canned answers.
var wantReplies = map[string]string{
	cnm.PathNetCapabilities:      `{"Scope":"local","ConnectivityScope":"local"}`,
	cnm.PathCreateNetwork:        `{}`,
	cnm.PathAllocateNetwork:      `{"Options":{"k":"v"}}`,
	cnm.PathDeleteNetwork:        `{}`,
	cnm.PathFreeNetwork:          `{}`,
	cnm.PathCreateEndpoint:       `{"Interface":null}`,
	cnm.PathDeleteEndpoint:       `{}`,
	cnm.PathEndpointOperInfo:     `{"Value":{"cni.addresses":["10.99.0.2/24"]}}`,
	cnm.PathJoin:                 `{"InterfaceName":{"SrcName":"dcnicf5dd77156b","DstPrefix":"eth"},"Gateway":"10.99.0.1","StaticRoutes":[{"Destination":"10.50.0.0/16","RouteType":1}],"DisableGatewayService":true}`,
	cnm.PathLeave:                `{}`,
	cnm.PathDiscoverNew:          `{}`,
	cnm.PathDiscoverDelete:       `{}`,
	cnm.PathProgramExternalConn:  `{}`,
	cnm.PathRevokeExternalConn:   `{}`,
	cnm.PathIpamCapabilities:     `{"RequiresMACAddress":false}`,
	cnm.PathDefaultAddressSpaces: `{"LocalDefaultAddressSpace":"CniLocal","GlobalDefaultAddressSpace":"CniGlobal"}`,
	cnm.PathRequestPool:          `{"PoolID":"docker-cni-10.99.0.0-24/1a2b3c4d","Pool":"10.99.0.0/24","Data":null}`,
	cnm.PathReleasePool:          `{}`,
	cnm.PathRequestAddress:       `{"Address":"10.99.0.2/24","Data":null}`,
	cnm.PathReleaseAddress:       `{}`,
}

// driverPaths lists every path served by a driver method.
func driverPaths() []string {
	var ps []string
	for p := range wantReplies {
		ps = append(ps, p)
	}
	return ps
}

type fakeNet struct{ r *recorder }

func (f *fakeNet) GetCapabilities(_ context.Context, req *struct{}) (*network.CapabilitiesResponse, error) {
	return answer(f.r, cnm.PathNetCapabilities, req, netCaps)
}

func (f *fakeNet) CreateNetwork(_ context.Context, req *network.CreateNetworkRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathCreateNetwork, req, (*struct{})(nil))
}

func (f *fakeNet) AllocateNetwork(_ context.Context, req *network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error) {
	return answer(f.r, cnm.PathAllocateNetwork, req, allocResp)
}

func (f *fakeNet) DeleteNetwork(_ context.Context, req *network.DeleteNetworkRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathDeleteNetwork, req, (*struct{})(nil))
}

func (f *fakeNet) FreeNetwork(_ context.Context, req *network.FreeNetworkRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathFreeNetwork, req, (*struct{})(nil))
}

func (f *fakeNet) CreateEndpoint(_ context.Context, req *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error) {
	return answer(f.r, cnm.PathCreateEndpoint, req, endpointResp)
}

func (f *fakeNet) DeleteEndpoint(_ context.Context, req *network.DeleteEndpointRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathDeleteEndpoint, req, (*struct{})(nil))
}

func (f *fakeNet) EndpointOperInfo(_ context.Context, req *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error) {
	return answer(f.r, cnm.PathEndpointOperInfo, req, operInfo)
}

func (f *fakeNet) Join(_ context.Context, req *network.JoinRequest) (*cnm.JoinResponse, error) {
	return answer(f.r, cnm.PathJoin, req, joinResp)
}

func (f *fakeNet) Leave(_ context.Context, req *network.LeaveRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathLeave, req, (*struct{})(nil))
}

func (f *fakeNet) DiscoverNew(_ context.Context, req *network.DiscoveryNotification) (*struct{}, error) {
	return answer(f.r, cnm.PathDiscoverNew, req, (*struct{})(nil))
}

func (f *fakeNet) DiscoverDelete(_ context.Context, req *network.DiscoveryNotification) (*struct{}, error) {
	return answer(f.r, cnm.PathDiscoverDelete, req, (*struct{})(nil))
}

func (f *fakeNet) ProgramExternalConnectivity(_ context.Context, req *network.ProgramExternalConnectivityRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathProgramExternalConn, req, (*struct{})(nil))
}

func (f *fakeNet) RevokeExternalConnectivity(_ context.Context, req *network.RevokeExternalConnectivityRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathRevokeExternalConn, req, (*struct{})(nil))
}

type fakeIPAM struct{ r *recorder }

func (f *fakeIPAM) GetCapabilities(_ context.Context, req *struct{}) (*ipam.CapabilitiesResponse, error) {
	return answer(f.r, cnm.PathIpamCapabilities, req, ipamCaps)
}

func (f *fakeIPAM) GetDefaultAddressSpaces(_ context.Context, req *struct{}) (*ipam.AddressSpacesResponse, error) {
	return answer(f.r, cnm.PathDefaultAddressSpaces, req, spaces)
}

func (f *fakeIPAM) RequestPool(_ context.Context, req *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error) {
	return answer(f.r, cnm.PathRequestPool, req, poolResp)
}

func (f *fakeIPAM) ReleasePool(_ context.Context, req *ipam.ReleasePoolRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathReleasePool, req, (*struct{})(nil))
}

func (f *fakeIPAM) RequestAddress(_ context.Context, req *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error) {
	return answer(f.r, cnm.PathRequestAddress, req, addressResp)
}

func (f *fakeIPAM) ReleaseAddress(_ context.Context, req *ipam.ReleaseAddressRequest) (*struct{}, error) {
	return answer(f.r, cnm.PathReleaseAddress, req, (*struct{})(nil))
}

// traced is one request of a recorded trace.
type traced struct {
	Where string // file:line, for messages
	Path  string
	Body  string
}

// traceFiles are the recordings of real engines in testdata.
var traceFiles = []string{
	"dockerd-20.10-remote-driver-requests.txt",
	"dockerd-29-remote-driver-requests.txt",
}

// readTrace parses a recording: `>>> /Method.Path {json}` lines, with '#'
// comments and `=== MARK` lines between them.
func readTrace(t testing.TB, name string) []traced {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []traced
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case line == "", strings.HasPrefix(line, "#"), strings.HasPrefix(line, "=== MARK"):
			continue
		case strings.HasPrefix(line, ">>> "):
			path, body, _ := strings.Cut(strings.TrimPrefix(line, ">>> "), " ")
			out = append(out, traced{Where: name + ":" + strconv.Itoa(n), Path: path, Body: body})
		default:
			t.Fatalf("%s:%d: unexpected line %q", name, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no requests", name)
	}
	return out
}
