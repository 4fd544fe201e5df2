package driver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

var _ Namespaces = (*testutil.Namespaces)(nil)

// sharedConflist is a conflist another runtime uses too; networks bind to
// it with --ipam-opt cni.network=shared. Its routes give a default route
// and one to 10.50.0.0/16.
const sharedConflist = `{
  "cniVersion": "1.0.0",
  "name": "shared",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/networks",
              "ranges": [[{"subnet": "10.88.0.0/24"}]],
              "routes": [{"dst": "0.0.0.0/0"}, {"dst": "10.50.0.0/16"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`

const k8sNamespace = "docker"

type env struct {
	t          *testing.T
	ctx        context.Context
	dir        string
	confDir    string
	confFile   string
	dataDir    string
	scratchDir string
	store      *state.Store
	st         testutil.State
	ns         *testutil.Namespaces
	cni        *testutil.Runner
	auth       *pools.Authority
	ipam       *ipamdriver.Driver
	d          *Driver
}

// newEnv returns both drivers over one in-memory store, the fake runner and
// the namespace model, with the shared conflist in the conf dir.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		t:          t,
		ctx:        context.Background(),
		dir:        dir,
		confDir:    filepath.Join(dir, "net.d"),
		dataDir:    filepath.Join(dir, "ipam"),
		scratchDir: filepath.Join(dir, "run", "netns"),
		store:      state.NewMemory(),
		ns:         testutil.NewNamespaces(),
	}
	e.st = testutil.State{S: e.store}
	e.cni = testutil.NewRunner(e.ns)
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.confFile = filepath.Join(e.confDir, "10-shared.conflist")
	if err := os.WriteFile(e.confFile, []byte(sharedConflist), 0o644); err != nil {
		t.Fatal(err)
	}
	log := testutil.Logger(t)
	e.auth = pools.New(pools.Config{ConfDir: e.confDir, DataDir: e.dataDir, NetNS: "/run/docker-cni/ipam-netns"}, e.store, e.cni, log)
	e.ipam = ipamdriver.New(e.auth)
	e.d = New(Config{ConfDir: e.confDir, ScratchDir: e.scratchDir, DataDir: e.dataDir, K8sNamespace: k8sNamespace},
		Deps{Store: e.store, Pools: e.auth, CNI: e.cni, NS: e.ns, Log: log})
	return e
}

// id makes a 64-hex-digit Docker ID whose short form starts with prefix.
func id(prefix string, n int) string {
	s := fmt.Sprintf("%s%04d", prefix, n)
	return s + strings.Repeat("f", 64-len(s))
}

func netID(n int) string { return id("a1", n) }
func epID(n int) string  { return id("e1", n) }

// generic wraps -o options as Docker sends them.
func generic(kv ...string) map[string]any {
	g := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		g[kv[i]] = kv[i+1]
	}
	return map[string]any{cnm.OptGeneric: g}
}

func bound(name string) *ipam.RequestPoolRequest {
	return &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Options: map[string]string{translate.OptNetwork: name}}
}

func subnet(s string) *ipam.RequestPoolRequest {
	return &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Pool: s}
}

// cniPool asks the cni IPAM driver for a pool and its gateway, as dockerd
// does before CreateNetwork, and returns the IPAMData it then sends.
func (e *env) cniPool(req *ipam.RequestPoolRequest) *network.IPAMData {
	e.t.Helper()
	pool, err := e.ipam.RequestPool(e.ctx, req)
	if err != nil {
		e.t.Fatalf("RequestPool: %v", err)
	}
	gw, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID,
		Options: map[string]string{cnm.OptRequestAddressType: cnm.RequestAddressTypeGateway}})
	if err != nil {
		e.t.Fatalf("gateway RequestAddress: %v", err)
	}
	return &network.IPAMData{AddressSpace: req.AddressSpace, Pool: pool.Pool, Gateway: gw.Address}
}

// createNetwork is `docker network create --driver cni --ipam-driver cni`:
// the pool, then CreateNetwork with opts.
func (e *env) createNetwork(id string, pool *ipam.RequestPoolRequest, opts map[string]any) error {
	e.t.Helper()
	data := e.cniPool(pool)
	_, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: id, Options: opts, IPv4Data: []*network.IPAMData{data}})
	return err
}

func (e *env) mustCreateNetwork(id string, pool *ipam.RequestPoolRequest, opts map[string]any) {
	e.t.Helper()
	if err := e.createNetwork(id, pool, opts); err != nil {
		e.t.Fatalf("CreateNetwork: %v", err)
	}
}

// createEndpoint reserves an address in the network's pool for a
// container named name and creates the endpoint; it returns the address.
func (e *env) createEndpoint(netID, epID, name string) string {
	e.t.Helper()
	nw := e.network(netID)
	addr, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: nw.PoolIDs[0],
		Options: map[string]string{cnm.OptEndpointName: name}})
	if err != nil {
		e.t.Fatalf("RequestAddress: %v", err)
	}
	if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
		Interface: &network.EndpointInterface{Address: addr.Address}}); err != nil {
		e.t.Fatalf("CreateEndpoint: %v", err)
	}
	return addr.Address
}

func (e *env) join(netID, epID, sandboxKey string) (*cnm.JoinResponse, error) {
	return e.d.Join(e.ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID, SandboxKey: sandboxKey, Options: map[string]any{}})
}

func (e *env) mustJoin(netID, epID, sandboxKey string) *cnm.JoinResponse {
	e.t.Helper()
	resp, err := e.join(netID, epID, sandboxKey)
	if err != nil {
		e.t.Fatalf("Join: %v", err)
	}
	return resp
}

func (e *env) leave(netID, epID string) error {
	_, err := e.d.Leave(e.ctx, &network.LeaveRequest{NetworkID: netID, EndpointID: epID})
	return err
}

// sandbox makes a container's netns (as Docker Engine >= 28 does before
// Join) holding the given links.
func (e *env) sandbox(name string, links ...testutil.Link) string {
	p := filepath.Join(e.dir, "docker", "netns", name)
	e.ns.AddNetNS(p, links...)
	return p
}

func (e *env) network(id string) *state.Network {
	e.t.Helper()
	nw, err := e.st.Network(id)
	if err != nil {
		e.t.Fatalf("network %s: %v", translate.ShortID(id), err)
	}
	return nw
}

func (e *env) endpoint(id string) *state.Endpoint {
	e.t.Helper()
	ep, err := e.st.Endpoint(id)
	if err != nil {
		e.t.Fatalf("endpoint %s: %v", translate.ShortID(id), err)
	}
	return ep
}

func (e *env) pools() []*state.Pool {
	e.t.Helper()
	ps, err := e.st.Pools()
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

// onlyCall returns the one recorded call of op.
func (e *env) onlyCall(op testutil.Op) testutil.Call {
	e.t.Helper()
	calls := e.cni.Calls(op)
	if len(calls) != 1 {
		e.t.Fatalf("%d %s calls, want 1: %+v", len(calls), op, calls)
	}
	return calls[0]
}

// wantErr fails the test unless err is an error whose text holds every
// part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// wantSameRT fails unless DEL ran with the runtime conf ADD used.
func wantSameRT(t *testing.T, add, del libcni.RuntimeConf) {
	t.Helper()
	if !reflect.DeepEqual(add, del) {
		t.Errorf("DEL runtime conf = %+v\nADD runtime conf = %+v", del, add)
	}
}

// staticIPAM returns the addresses and routes of the static IPAM section
// of a conflist ADD ran.
func staticIPAM(t *testing.T, list []byte) (addrs, routes string) {
	t.Helper()
	sec := testutil.IPAMSection(t, list)
	if sec["type"] != "static" {
		t.Fatalf("ipam type = %v, want static (Join must configure the reserved address): %s", sec["type"], list)
	}
	return fmt.Sprint(sec["addresses"]), fmt.Sprint(sec["routes"])
}
