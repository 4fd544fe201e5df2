package testutil

import (
	"context"
	"fmt"
	"testing"

	"github.com/docker-cni/docker-cni/cnirun"
)

// The drivers' tests lean on the fake allocating as host-local does; these
// pin the behaviours they rely on.
func TestHostLocalModel(t *testing.T) {
	ctx := context.Background()
	r := NewRunner(nil)
	conf := []byte(`{"cniVersion": "1.0.0", "name": "n", "ipam": {"type": "host-local",
	  "ranges": [[{"subnet": "10.1.0.0/29"}]]}}`)
	add := func(owner string) (string, error) {
		res, err := r.PluginAdd(ctx, "host-local", conf, cnirun.PluginArgs{ContainerID: owner, IfName: "eth0"})
		if err != nil {
			return "", err
		}
		return res.IPs[0].Address.String() + " gw " + res.IPs[0].Gateway.String(), nil
	}
	var got []string
	for i := 0; i < 6; i++ {
		a, err := add(fmt.Sprint("c", i))
		if err != nil {
			got = append(got, "error: "+err.Error())
			continue
		}
		got = append(got, a)
	}
	// .1 is the gateway, .7 the broadcast address; the range holds 5.
	want := "[10.1.0.2/29 gw 10.1.0.1 10.1.0.3/29 gw 10.1.0.1 10.1.0.4/29 gw 10.1.0.1 10.1.0.5/29 gw 10.1.0.1 10.1.0.6/29 gw 10.1.0.1 error: no IP addresses available in range set: 10.1.0.1-10.1.0.6]"
	if fmt.Sprint(got) != want {
		t.Errorf("allocations = %v\nwant          %s", got, want)
	}
	if _, err := add("c0"); err == nil {
		t.Error("a second address for the same owner was granted")
	}
	// Release by owner, then round robin continues after the last one.
	if err := r.PluginDel(ctx, "host-local", conf, cnirun.PluginArgs{ContainerID: "c1", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := r.PluginDel(ctx, "host-local", conf, cnirun.PluginArgs{ContainerID: "c1", IfName: "eth0"}); err != nil {
		t.Errorf("second release: %v", err)
	}
	if a, err := add("c9"); err != nil || a != "10.1.0.3/29 gw 10.1.0.1" {
		t.Errorf("after release: %s, %v", a, err)
	}
	withIP := []byte(`{"cniVersion": "1.0.0", "name": "n", "args": {"cni": {"ips": ["10.1.0.1"]}}, "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.1.0.0/29"}]]}}`)
	if _, err := r.PluginAdd(ctx, "host-local", withIP, cnirun.PluginArgs{ContainerID: "x", IfName: "eth0"}); err == nil {
		t.Error("the gateway was granted on request")
	}
	if n := len(r.Reserved("n")); n != 5 {
		t.Errorf("%d reserved, want 5", n)
	}
}

func TestNamespacesModel(t *testing.T) {
	n := NewNamespaces()
	if err := n.Create("/s"); err != nil {
		t.Fatal(err)
	}
	if err := n.Create("/s"); err == nil {
		t.Error("Create over an existing netns succeeded")
	}
	if err := n.addChainLink("/s", Link{Name: "eth0", MAC: "02:00:00:00:00:01"}); err != nil {
		t.Fatal(err)
	}
	if err := n.MoveToHost("/s", "eth0", "dcni1", "docker-cni test"); err != nil {
		t.Fatal(err)
	}
	found, err := n.Reclaim(HostNetNS, "02:00:00:00:00:01", "/s", "eth0", nil)
	if err != nil || !found {
		t.Fatalf("Reclaim = %v, %v", found, err)
	}
	if names, _ := n.LinkNames("/s"); fmt.Sprint(names) != "[lo eth0]" {
		t.Errorf("links = %v", names)
	}
	if err := n.Remove("/s"); err != nil || n.Exists("/s") {
		t.Errorf("Remove: %v", err)
	}
	if err := n.Remove("/s"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}
