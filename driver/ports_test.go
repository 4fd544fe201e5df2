package driver

import (
	"errors"
	"fmt"
	"testing"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

// portOpts are the Join options of `docker run -p 8080:80 -p 53/udp`, as
// decoded from Docker's JSON.
func portOpts() map[string]any {
	return map[string]any{cnm.OptPortMap: []any{
		map[string]any{"Proto": 6.0, "Port": 80.0, "HostPort": 8080.0},
		map[string]any{"Proto": 17.0, "Port": 53.0},
	}}
}

// portmapCalls returns the portmap runs of op (the IPAM driver's
// reservations are PluginAdd calls too).
func (e *env) portmapCalls(op testutil.Op) []testutil.Call {
	var out []testutil.Call
	for _, c := range e.cni.Calls(op) {
		if c.PluginType == "portmap" {
			out = append(out, c)
		}
	}
	return out
}

// portMappings returns the portMappings a portmap run was given.
func portMappings(t *testing.T, c testutil.Call) string {
	t.Helper()
	conf := testutil.Decode(t, c.Conf)
	rc, _ := conf["runtimeConfig"].(map[string]any)
	return fmt.Sprint(rc["portMappings"])
}

func TestJoinDirectPublishesPorts(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1")
	e.ns.SetPortBusy(translate.PortKey{Proto: "udp", Port: translate.EphemeralFirst})

	if _, err := e.d.Join(e.ctx, &network.JoinRequest{NetworkID: netID(1), EndpointID: epID(1), SandboxKey: sbox, Options: portOpts()}); err != nil {
		t.Fatal(err)
	}
	pas := e.portmapCalls(testutil.OpPluginAdd)
	if len(pas) != 1 {
		t.Fatalf("portmap ADDs = %v, want 1", pas)
	}
	pa := pas[0]
	if pa.PluginType != "portmap" || pa.Args.ContainerID != epID(1) || pa.Args.IfName != "eth0" || pa.Args.NetNS != sbox {
		t.Errorf("portmap ADD = %s %+v", pa.PluginType, pa.Args)
	}
	if got := portMappings(t, pa); got != "[map[containerPort:80 hostPort:8080 protocol:tcp] map[containerPort:53 hostPort:49154 protocol:udp]]" {
		t.Errorf("port mappings = %s (49153/udp is busy on the host)", got)
	}
	if prev, _ := testutil.Decode(t, pa.Conf)["prevResult"].(map[string]any); fmt.Sprint(prev["ips"]) == "<nil>" {
		t.Errorf("portmap ran without the ADD result: %s", pa.Conf)
	}

	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, c := range e.cni.Calls(testutil.OpPluginDel, testutil.OpDel) {
		ops = append(ops, string(c.Op)+" "+c.PluginType)
	}
	if fmt.Sprint(ops) != "[PLUGIN DEL portmap DEL ]" {
		t.Errorf("Leave ran %v, want the ports withdrawn, then DEL", ops)
	}
	if got := portMappings(t, e.onlyCall(testutil.OpPluginDel)); got != portMappings(t, pa) {
		t.Errorf("withdrew %s, published %s", got, portMappings(t, pa))
	}
}

func TestJoinDirectSecondNetworkPublishesNothing(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1", testutil.Link{Name: "eth0"})
	e.ns.SetDefaultRoutes(sbox, true, false)
	if _, err := e.d.Join(e.ctx, &network.JoinRequest{NetworkID: netID(1), EndpointID: epID(1), SandboxKey: sbox, Options: portOpts()}); err != nil {
		t.Fatal(err)
	}
	if calls := e.portmapCalls(testutil.OpPluginAdd); len(calls) != 0 {
		t.Errorf("published on a network that does not carry the default route: %+v", calls)
	}
}

func TestJoinPublishFailsRollsBack(t *testing.T) {
	e := newEnv(t)
	e.directEndpoint()
	sbox := e.sandbox("c1")
	e.cni.FailNext(testutil.OpPluginAdd, errors.New("iptables: No chain/target/match by that name"))
	_, err := e.d.Join(e.ctx, &network.JoinRequest{NetworkID: netID(1), EndpointID: epID(1), SandboxKey: sbox, Options: portOpts()})
	wantErr(t, err, "join endpoint e10001ffffff on network a10001ffffff: publish ports", "cni ADD portmap: iptables: No chain/target/match by that name")
	if n := len(e.portmapCalls(testutil.OpPluginDel)); n != 1 {
		t.Errorf("%d portmap DELs after the failed publish, want 1", n)
	}
	wantSameRT(t, e.onlyCall(testutil.OpAdd).RT, e.onlyCall(testutil.OpDel).RT)
	if att := e.endpoint(epID(1)).Attachment; att != nil {
		t.Errorf("attachment left: %+v", att)
	}
}

// TestPublishesAtProgramExternalConnectivity: in move and handover mode
// Docker says which network carries the default route; a second call
// publishes nothing twice, and the host ports of two endpoints never clash.
func TestPublishesAtProgramExternalConnectivity(t *testing.T) {
	for _, mode := range []string{"move", "handover"} {
		t.Run(mode, func(t *testing.T) { testPublishesAtProgramExternalConnectivity(t, mode) })
	}
}

func testPublishesAtProgramExternalConnectivity(t *testing.T, mode string) {
	e := newEnv(t)
	e.boundEndpoint()
	e.createEndpoint(netID(1), epID(2), "db")
	for _, ep := range []string{epID(1), epID(2)} {
		key := "/var/run/docker/netns/" + ep[:12]
		if mode == "handover" {
			key = e.sandbox(ep[:12])
		}
		if _, err := e.d.Join(e.ctx, &network.JoinRequest{NetworkID: netID(1), EndpointID: ep, SandboxKey: key, Options: portOpts()}); err != nil {
			t.Fatal(err)
		}
		if got := e.endpoint(ep).Attachment.Mode; got != mode {
			t.Fatalf("join mode = %s, want %s", got, mode)
		}
	}
	if calls := e.portmapCalls(testutil.OpPluginAdd); len(calls) != 0 {
		t.Fatalf("%s-mode Join published: %+v", mode, calls)
	}
	for _, ep := range []string{epID(1), epID(1), epID(2)} {
		opts := portOpts()
		if ep == epID(2) {
			opts = map[string]any{cnm.OptPortMap: []any{map[string]any{"Proto": 17.0, "Port": 53.0}}}
		}
		if _, err := e.d.ProgramExternalConnectivity(e.ctx, &network.ProgramExternalConnectivityRequest{NetworkID: netID(1), EndpointID: ep, Options: opts}); err != nil {
			t.Fatal(err)
		}
	}
	adds := e.portmapCalls(testutil.OpPluginAdd)
	if len(adds) != 2 {
		t.Fatalf("%d portmap ADDs, want 2 (one per endpoint)", len(adds))
	}
	if got := portMappings(t, adds[1]); got != "[map[containerPort:53 hostPort:49154 protocol:udp]]" {
		t.Errorf("second endpoint's mappings = %s, want the next free host port", got)
	}
	if _, err := e.d.RevokeExternalConnectivity(e.ctx, &network.RevokeExternalConnectivityRequest{NetworkID: netID(1), EndpointID: epID(1)}); err != nil {
		t.Fatal(err)
	}
	if got := portMappings(t, e.onlyCall(testutil.OpPluginDel)); got != portMappings(t, adds[0]) {
		t.Errorf("revoked %s, published %s", got, portMappings(t, adds[0]))
	}
	if e.endpoint(epID(1)).Attachment.Published != nil {
		t.Error("published ports still recorded")
	}
}
