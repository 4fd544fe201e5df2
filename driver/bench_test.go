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
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/state"
)

// BenchmarkJoinLeave measures Join + Leave through the real reference
// plugins (bridge, static, portmap, firewall) in both join modes, side by
// side: direct (the sandbox netns exists) and move (scratch netns, link
// handed over, reclaimed before DEL). It needs root and the plugins in
// /usr/lib/cni; it uses subnet 10.236.250.0/24 and bridge dcnibench0.
func BenchmarkJoinLeave(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for network namespaces")
	}
	dir := b.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := driver.New(driver.Config{ConfDir: dir, ScratchDir: filepath.Join(dir, "netns"), DataDir: filepath.Join(dir, "ipam")},
		state.NewMemory(), cnirun.New([]string{"/opt/cni/bin", "/usr/lib/cni"}, filepath.Join(dir, "cache")), sandbox.Ops{}, nil, log)
	ctx := context.Background()
	const netID = "bench0000000000000000000000000000000000000000000000000000000000aa"
	_, err := d.CreateNetwork(ctx, &network.CreateNetworkRequest{
		NetworkID: netID,
		Options:   map[string]any{"com.docker.network.generic": map[string]any{"com.docker.network.bridge.name": "dcnibench0"}},
		IPv4Data:  []*network.IPAMData{{AddressSpace: "LocalDefault", Pool: "10.236.250.0/24", Gateway: "10.236.250.1/24"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.DeleteNetwork(ctx, &network.DeleteNetworkRequest{NetworkID: netID}) })
	sbox := filepath.Join(dir, "sandbox")
	if err := sandbox.Create(sbox); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sandbox.Remove(sbox) })

	for _, mode := range []struct{ name, key string }{{"direct", sbox}, {"move", filepath.Join(dir, "no-such-netns")}} {
		b.Run(mode.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				ep := fmt.Sprintf("%s%060d", mode.name[:4], i)
				if _, err := d.CreateEndpoint(ctx, &network.CreateEndpointRequest{NetworkID: netID, EndpointID: ep,
					Interface: &network.EndpointInterface{Address: "10.236.250.10/24"}}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Join(ctx, &network.JoinRequest{NetworkID: netID, EndpointID: ep, SandboxKey: mode.key}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.Leave(ctx, &network.LeaveRequest{NetworkID: netID, EndpointID: ep}); err != nil {
					b.Fatal(err)
				}
				if _, err := d.DeleteEndpoint(ctx, &network.DeleteEndpointRequest{NetworkID: netID, EndpointID: ep}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
