// Package integration runs docker-cni's drivers against real CNI plugins in
// real network namespaces, without Docker, for behaviours the Docker CLI
// cannot reach. It needs root; with CI=true it fails instead of skipping.
package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/state"
)

func needRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but not root: integration tests must run")
	}
	t.Skip("needs root")
}

// newPlugins builds (once, cached) a CNI plugins release that speaks CNI 1.1.
func newPlugins(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("bash", "../engines/plugins.sh").Output()
	if err != nil {
		t.Fatalf("build CNI plugins: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// TestGCByAnotherRuntime: kubelet's runtime may run CNI 1.1 GC over a
// conflist docker-cni shares, listing only its own attachments; libcni's GC
// DELs every attachment in the caller's cache dir that is not listed, then
// calls the plugins' GC. docker-cni keeps its own cache dir, so that GC
// never DELs its attachments (case "own cache"); the control case shares the
// cache dir and shows the DEL happen; disableGC in the conflist stops GC
// altogether. The address reservation must survive wherever the attachment
// does (the reference host-local has no GC of its own yet; disableGC also
// guards against an IPAM plugin that frees unlisted owners).
func TestGCByAnotherRuntime(t *testing.T) {
	needRoot(t)
	bin := newPlugins(t)
	cases := []struct {
		name                   string
		sharedCache, disableGC bool
		wantKept               bool
	}{
		{"own cache", false, false, true},
		{"shared cache (control)", true, false, false},
		{"shared cache with disableGC", true, true, true},
	}
	for i, tc := range cases {
		disable := tc.disableGC
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			confDir, dataDir := filepath.Join(dir, "net.d"), filepath.Join(dir, "store")
			os.MkdirAll(confDir, 0o755)
			name, bridge, subnet := fmt.Sprintf("integ-gc-%d", i), fmt.Sprintf("integgc%d", i), fmt.Sprintf("10.237.%d.0/24", i+1)
			conf := fmt.Sprintf(`{"cniVersion": "1.1.0", "name": %q, "disableGC": %v, "plugins": [
			  {"type": "bridge", "bridge": %q, "isGateway": true,
			   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}}]}`, name, disable, bridge, subnet, dataDir)
			if err := os.WriteFile(filepath.Join(confDir, "10-"+name+".conflist"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sandbox.DeleteHostLink(bridge) })

			store, log := state.NewMemory(), slog.New(slog.NewTextHandler(io.Discard, nil))
			runner := cnirun.New([]string{bin}, filepath.Join(dir, "docker-cni-cache"))
			ipamNS, sbox := filepath.Join(dir, "ipamns"), filepath.Join(dir, "sandbox")
			for _, ns := range []string{ipamNS, sbox} {
				if err := sandbox.Create(ns); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sandbox.Remove(ns) })
			}
			auth := pools.New(pools.Config{ConfDir: confDir, NetNS: ipamNS}, store, runner, log)
			id := ipamdriver.New(auth)
			nd := driver.New(driver.Config{ConfDir: confDir, ScratchDir: filepath.Join(dir, "scratch")},
				driver.Deps{Store: store, Pools: auth, CNI: runner, NS: sandbox.Ops{}, Log: log})

			pool, err := id.RequestPool(ctx, &ipam.RequestPoolRequest{AddressSpace: cnm.LocalSpace, Options: map[string]string{"cni.network": name}})
			if err != nil {
				t.Fatal(err)
			}
			gw, err := id.RequestAddress(ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID, Options: map[string]string{"RequestAddressType": "com.docker.network.gateway"}})
			if err != nil {
				t.Fatal(err)
			}
			netID := fmt.Sprintf("%064d", i)
			// Direct mode keeps the interface in the sandbox, where GC
			// would delete it; nothing plays libnetwork here.
			direct := map[string]any{"com.docker.network.generic": map[string]any{"cni.join": "direct"}}
			if _, err := nd.CreateNetwork(ctx, &network.CreateNetworkRequest{NetworkID: netID, Options: direct,
				IPv4Data: []*network.IPAMData{{AddressSpace: cnm.LocalSpace, Pool: pool.Pool, Gateway: gw.Address}}}); err != nil {
				t.Fatal(err)
			}
			addr, err := id.RequestAddress(ctx, &ipam.RequestAddressRequest{PoolID: pool.PoolID})
			if err != nil {
				t.Fatal(err)
			}
			epID := fmt.Sprintf("e%063d", i)
			if _, err := nd.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: epID,
				Interface: &network.EndpointInterface{Address: addr.Address}}); err != nil {
				t.Fatal(err)
			}
			if _, err := nd.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: epID, SandboxKey: sbox}); err != nil {
				t.Fatal(err)
			}
			ip := strings.Split(addr.Address, "/")[0]
			storeFile := filepath.Join(dataDir, name, ip)
			if _, err := os.Stat(storeFile); err != nil {
				t.Fatalf("reserved address not in the store: %v", err)
			}

			// Another runtime (its own cache dir) runs GC listing none of
			// docker-cni's attachments.
			otherCache := filepath.Join(dir, "other-cache")
			if tc.sharedCache {
				otherCache = filepath.Join(dir, "docker-cni-cache")
			}
			other := libcni.NewCNIConfigWithCacheDir([]string{bin}, otherCache, nil)
			list, err := libcni.ConfListFromBytes([]byte(conf))
			if err != nil {
				t.Fatal(err)
			}
			if err := other.GCNetworkList(ctx, list, &libcni.GCArgs{}); err != nil {
				t.Fatalf("GC by the other runtime: %v", err)
			}

			names, err := sandbox.LinkNames(sbox)
			if err != nil {
				t.Fatal(err)
			}
			kept := strings.Contains(strings.Join(names, " "), "eth0")
			if kept != tc.wantKept {
				t.Errorf("after the other runtime's GC, docker-cni's eth0 present = %v, want %v (links %v)", kept, tc.wantKept, names)
			}
			if _, err := os.Stat(storeFile); tc.wantKept && err != nil {
				t.Errorf("the other runtime's GC freed docker-cni's %s: %v", ip, err)
			}

			if _, err := nd.Leave(ctx, &network.LeaveRequest{NetworkID: netID, EndpointID: epID}); err != nil {
				t.Error(err)
			}
			nd.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: netID, EndpointID: epID})
			id.ReleaseAddress(ctx, &ipam.ReleaseAddressRequest{PoolID: pool.PoolID, Address: ip})
			id.ReleasePool(ctx, &ipam.ReleasePoolRequest{PoolID: pool.PoolID})
			nd.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID})
		})
	}
}
