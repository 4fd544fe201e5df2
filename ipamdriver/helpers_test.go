package ipamdriver_test

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// ipamNetNS is the netns the IPAM driver passes as CNI_NETNS.
const ipamNetNS = "/run/docker-cni/ipam-netns"

// sharedConflist is a conflist another runtime (kubelet) uses too: the
// network docker-cni binds to with --ipam-opt cni.network=shared.
const sharedConflist = `{
  "cniVersion": "1.0.0",
  "name": "shared",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
     "ipam": {"type": "host-local", "dataDir": "/var/lib/cni/networks",
              "ranges": [[{"subnet": "10.88.0.0/24"}], [{"subnet": "fd88::/64"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`

type env struct {
	t       *testing.T
	ctx     context.Context
	confDir string
	dataDir string
	store   *state.Store
	st      testutil.State
	cni     *testutil.Runner
	auth    *pools.Authority
	ipam    *ipamdriver.Driver
}

// newEnv returns an IPAM driver over a fresh conf dir and an in-memory
// store, carving generated pools out of defaultPools.
func newEnv(t *testing.T, defaultPools ...string) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		t:       t,
		ctx:     context.Background(),
		confDir: filepath.Join(dir, "net.d"),
		dataDir: filepath.Join(dir, "ipam"),
		store:   state.NewMemory(),
		cni:     testutil.NewRunner(nil),
	}
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var defaults []netip.Prefix
	for _, p := range defaultPools {
		defaults = append(defaults, netip.MustParsePrefix(p))
	}
	e.st = testutil.State{S: e.store}
	e.auth = pools.New(pools.Config{ConfDir: e.confDir, DataDir: e.dataDir, NetNS: ipamNetNS, DefaultPools: defaults},
		e.store, e.cni, testutil.Logger(t))
	e.ipam = ipamdriver.New(e.auth)
	return e
}

// writeConf puts a conflist into the conf dir and returns its path.
func (e *env) writeConf(file, body string) string {
	e.t.Helper()
	p := filepath.Join(e.confDir, file)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// bound asks for a pool of the shared network, as
// `docker network create --ipam-driver cni --ipam-opt cni.network=NAME` does.
func bound(name string) *ipam.RequestPoolRequest {
	return &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Options: map[string]string{translate.OptNetwork: name}}
}

// requestPool requests a pool and fails the test on error.
func (e *env) requestPool(req *ipam.RequestPoolRequest) *ipam.RequestPoolResponse {
	e.t.Helper()
	resp, err := e.ipam.RequestPool(e.ctx, req)
	if err != nil {
		e.t.Fatalf("RequestPool(%+v): %v", req, err)
	}
	return resp
}

// address reserves an address for a container, failing the test on error.
func (e *env) address(poolID, want string) string {
	e.t.Helper()
	resp, err := e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: poolID, Address: want, Options: map[string]string{}})
	if err != nil {
		e.t.Fatalf("RequestAddress(%s, %q): %v", poolID, want, err)
	}
	return resp.Address
}

// gateway makes Docker's gateway request.
func (e *env) gateway(poolID, want string) (*ipam.RequestAddressResponse, error) {
	return e.ipam.RequestAddress(e.ctx, &ipam.RequestAddressRequest{PoolID: poolID, Address: want,
		Options: map[string]string{cnm.OptRequestAddressType: cnm.RequestAddressTypeGateway}})
}

func (e *env) pool(id string) *state.Pool {
	e.t.Helper()
	p, err := e.st.Pool(id)
	if err != nil {
		e.t.Fatalf("pool %s: %v", id, err)
	}
	return p
}

func (e *env) pools() []*state.Pool {
	e.t.Helper()
	ps, err := e.st.Pools()
	if err != nil {
		e.t.Fatal(err)
	}
	return ps
}

func (e *env) reservations() []*state.Reservation {
	e.t.Helper()
	rs, err := e.st.Reservations()
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
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

// ranges returns the host-local ranges of a network configuration.
func ranges(t *testing.T, conf []byte) []any {
	t.Helper()
	rs, _ := testutil.IPAMSection(t, conf)["ranges"].([]any)
	return rs
}

// firstRange returns the first range of the first range set.
func firstRange(t *testing.T, conf []byte) map[string]any {
	t.Helper()
	rs := ranges(t, conf)
	if len(rs) == 0 {
		t.Fatalf("no ranges in %s", conf)
	}
	set, _ := rs[0].([]any)
	r, _ := set[0].(map[string]any)
	return r
}
