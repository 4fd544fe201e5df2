package driver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/state"
)

// BenchmarkJoinLeave measures Join + Leave through the real reference
// plugins (bridge, static, portmap, firewall) in the three join modes, side
// by side: direct (the sandbox netns exists, -o cni.join=direct), handover
// (the sandbox exists; the link goes to the host for libnetwork, which the
// benchmark does not play, and is reclaimed before DEL) and move (scratch
// netns, link handed over, reclaimed before DEL). It needs root and the
// plugins in /usr/lib/cni; it uses subnets 10.236.250.0/24 and
// 10.236.251.0/24 and bridges dcnibench0 and dcnibench1.
func BenchmarkJoinLeave(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for network namespaces")
	}
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := state.NewMemory()
	runner := cnirun.New([]string{"/opt/cni/bin", "/usr/lib/cni"}, filepath.Join(dir, "cache"))
	auth := pools.New(pools.Config{ConfDir: dir, DataDir: filepath.Join(dir, "ipam")}, store, runner, log)
	d := driver.New(driver.Config{ConfDir: dir, ScratchDir: filepath.Join(dir, "netns"), DataDir: filepath.Join(dir, "ipam")},
		driver.Deps{Store: store, Pools: auth, CNI: runner, NS: sandbox.Ops{}, Log: log})
	ctx := context.Background()
	nets := map[string]string{} // join option -> network ID
	for i, join := range []string{"", "direct"} {
		id := fmt.Sprintf("bench%058d%d", 0, i)
		generic := map[string]any{"com.docker.network.bridge.name": fmt.Sprintf("dcnibench%d", i)}
		if join != "" {
			generic["cni.join"] = join
		}
		_, err := d.CreateNetwork(ctx, &network.CreateNetworkRequest{
			NetworkID: id,
			Options:   map[string]any{"com.docker.network.generic": generic},
			IPv4Data:  []*network.IPAMData{{AddressSpace: "LocalDefault", Pool: fmt.Sprintf("10.236.%d.0/24", 250+i), Gateway: fmt.Sprintf("10.236.%d.1/24", 250+i)}},
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: id}) })
		nets[join] = id
	}
	sbox := filepath.Join(dir, "sandbox")
	if err := sandbox.Create(sbox); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sandbox.Remove(sbox) })

	modes := []struct{ name, netID, key, addr string }{
		{"direct", nets["direct"], sbox, "10.236.251.10/24"},
		{"handover", nets[""], sbox, "10.236.250.10/24"},
		{"move", nets[""], filepath.Join(dir, "no-such-netns"), "10.236.250.10/24"},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ep := fmt.Sprintf("%s%060d", mode.name[:4], i)
				if _, err := d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: mode.netID, EndpointID: ep,
					Interface: &network.EndpointInterface{Address: mode.addr}}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Join(ctx, &network.JoinRequest{NetworkID: mode.netID, EndpointID: ep, SandboxKey: mode.key}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Leave(ctx, &network.LeaveRequest{NetworkID: mode.netID, EndpointID: ep}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: mode.netID, EndpointID: ep}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
