package driver

import (
	"errors"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

// TestReconcileDroppedEndpoints: a container removed while docker-cni was
// down leaves its endpoint in docker-cni only: reconcile runs its DEL,
// releases its address in the CNI store and forgets it; the endpoints
// Docker still lists, and young ones, are kept.
func TestReconcileDroppedEndpoints(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	addr2 := e.createEndpoint(netID(1), epID(2), "db")
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	e.mustJoin(netID(1), epID(2), e.sandbox("c2"))
	add := e.cni.Calls(testutil.OpAdd)[0]
	e.cni.ResetCalls()
	engines := &fakeEngines{st: e.st, live: map[string]engine.Liveness{netID(1): engine.Alive}, dropped: map[string]bool{epID(1): true}}

	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	if calls := e.cni.Calls(testutil.OpDel); len(calls) != 0 {
		t.Fatalf("young endpoints torn down: %+v", calls)
	}
	e.later(2 * time.Hour)
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	// Handover: DEL runs in a scratch netns, with ADD's ID and name.
	if del := e.onlyCall(testutil.OpDel).RT; del.ContainerID != add.RT.ContainerID || del.IfName != add.RT.IfName {
		t.Errorf("DEL runtime conf %+v, ADD's %+v", del, add.RT)
	}
	if _, err := e.st.Endpoint(epID(1)); err == nil {
		t.Error("dropped endpoint still stored")
	}
	reserved := e.cni.Reserved("shared")
	if _, ok := reserved[netip.MustParseAddr("10.88.0.2")]; ok {
		t.Error("the dropped endpoint's address is still reserved in the CNI store")
	}
	if _, ok := reserved[netip.MustParsePrefix(addr2).Addr()]; !ok || e.endpoint(epID(2)).Attachment == nil {
		t.Error("the endpoint Docker still lists was touched")
	}
}

// TestDeleteNetworkLeavesFailingEndpointBehind: a DEL that keeps failing
// (its plugin was removed) does not block DeleteNetwork; the endpoint is
// left over, retried with a backoff, and gone once DEL succeeds.
func TestDeleteNetworkLeavesFailingEndpointBehind(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	e.createEndpoint(netID(1), epID(2), "db")
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	e.mustJoin(netID(1), epID(2), e.sandbox("c2"))
	e.cni.FailNext(testutil.OpDel, errors.New(`failed to find plugin "bridge" in path [/opt/cni/bin]`))
	if _, err := e.d.DeleteNetwork(e.ctx, &network.DeleteNetworkRequest{NetworkID: netID(1)}); err != nil {
		t.Fatalf("DeleteNetwork with one failing DEL: %v", err)
	}
	if _, err := e.st.Network(netID(1)); err == nil {
		t.Error("network still stored")
	}
	eps, _ := e.st.Endpoints()
	if len(eps) != 1 || eps[0].Leftover == "" || eps[0].Retries != 1 {
		t.Fatalf("endpoints after the delete = %+v, want one left over", eps)
	}
	left := eps[0].ID
	if dels := len(e.cni.Calls(testutil.OpDel)); dels != 2 {
		t.Errorf("%d DELs, want both endpoints tried", dels)
	}

	engines := &fakeEngines{st: e.st}
	e.cni.FailNext(testutil.OpDel, errors.New("still missing"))
	e.later(time.Minute)
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ep := e.endpoint(left); ep.Retries != 2 || !ep.RetryAt.After(time.Now().Add(time.Minute+15*time.Second)) {
		t.Errorf("after a second failure: retries %d, retry at %v; want 2, backoff grown", ep.Retries, ep.RetryAt)
	}
	e.later(time.Hour)
	if err := e.d.Reconcile(e.ctx, engines, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Endpoint(left); err == nil {
		t.Error("leftover endpoint still stored after its DEL succeeded")
	}
}

// TestSweep: interfaces and scratch netns no endpoint record knows (a crash
// left them) are removed; those of known endpoints, another instance's
// interfaces and the IPAM netns stay.
func TestSweep(t *testing.T) {
	e := newEnv(t)
	e.boundEndpoint()
	e.mustJoin(netID(1), epID(1), filepath.Join(e.dir, "no-netns-yet"))
	known, strayLink := translate.HostIfName(epID(1)), translate.HostIfName(epID(9))
	alias := e.d.linkAlias()
	otherInstance := translate.HostIfName(id("e2", 1))
	e.ns.AddLink(testutil.HostNetNS, testutil.Link{Name: strayLink, Alias: alias})
	e.ns.AddLink(testutil.HostNetNS, testutil.Link{Name: otherInstance, Alias: "docker-cni 0ther123"})
	stray := filepath.Join(e.scratchDir, translate.ShortID(epID(9)))
	ipamNS := filepath.Join(e.scratchDir, ScratchIPAM)
	e.ns.AddNetNS(stray)
	e.ns.AddNetNS(ipamNS)
	if err := e.d.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	links, _ := e.ns.HostLinks("dcni", alias)
	if !slices.Equal(links, []string{known}) {
		t.Errorf("this instance's dcni links after the sweep = %v, want only %s", links, known)
	}
	if others, _ := e.ns.HostLinks("dcni", "docker-cni 0ther123"); !slices.Equal(others, []string{otherInstance}) {
		t.Errorf("another instance's link was swept: %v", others)
	}
	if e.ns.Exists(stray) || !e.ns.Exists(ipamNS) || !e.ns.Exists(filepath.Join(e.scratchDir, translate.ShortID(epID(1)))) {
		t.Errorf("scratch netns after the sweep: stray %v, ipam %v", e.ns.Exists(stray), e.ns.Exists(ipamNS))
	}
}
