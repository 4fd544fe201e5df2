package driver_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
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

// BenchmarkLibCNIFloor is the floor under a container's network set-up:
// ADD then DEL of the generated chain (bridge + host-local, as
// translate.GenerateConflist writes it) and of a lean bound one (a
// kubelet-style bridge + host-local conflist without iptables plugins)
// through libcni into a fresh netns per run, with no Docker and no
// docker-cni handler around them. Only ADD and DEL are timed (add-ms and
// del-ms report each); the netns is made and removed outside the timer.
// It needs root and the plugins in /usr/lib/cni; it uses subnets
// 10.231.128.0/24 and 10.231.129.0/24 and bridges bnchflr0 and bnchflr1.
// `make bench` runs it next to the side-by-side bench of test/e2e.
func BenchmarkLibCNIFloor(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root for network namespaces")
	}
	dir := b.TempDir()
	generated, err := translate.GenerateConflist(translate.GenerateParams{
		Name: "bench-floor-generated", BridgeName: "bnchflr0", DataDir: filepath.Join(dir, "ipam"),
		Pools: []translate.Pool{{Subnet: netip.MustParsePrefix("10.231.128.0/24"), Gateway: netip.MustParseAddr("10.231.128.1")}},
	})
	if err != nil {
		b.Fatal(err)
	}
	bound := []byte(fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "bench-floor-bound",
  "plugins": [
    {"type": "bridge", "bridge": "bnchflr1", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.231.129.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}
  ]
}`, filepath.Join(dir, "ipam")))
	runner := cnirun.New([]string{"/opt/cni/bin", "/usr/lib/cni"}, filepath.Join(dir, "cache"))
	for _, c := range []struct {
		name, bridge string
		list         []byte
	}{{"generated", "bnchflr0", generated}, {"bound", "bnchflr1", bound}} {
		b.Run(c.name, func(b *testing.B) {
			b.Cleanup(func() { sandbox.DeleteHostLink(c.bridge) })
			var add, del time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				nsPath := filepath.Join(dir, "netns", fmt.Sprintf("%s-%d", c.name, i))
				if err := sandbox.Create(nsPath); err != nil {
					b.Fatal(err)
				}
				rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("floor%059d", i), NetNS: nsPath, IfName: "eth0"}
				ctx := context.Background()
				b.StartTimer()
				start := time.Now()
				if _, err := runner.Add(ctx, c.list, rt); err != nil {
					b.Fatalf("ADD %s: %v", c.name, err)
				}
				mid := time.Now()
				if err := runner.Del(ctx, c.list, rt); err != nil {
					b.Fatalf("DEL %s: %v", c.name, err)
				}
				add, del = add+mid.Sub(start), del+time.Since(mid)
				b.StopTimer()
				if err := sandbox.Remove(nsPath); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(add.Microseconds())/1000/float64(b.N), "add-ms")
			b.ReportMetric(float64(del.Microseconds())/1000/float64(b.N), "del-ms")
		})
	}
}
