package driver

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/translate"
)

// counts is an observe.Counter that counts.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) Add(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[kind]++
}

func (c *counts) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// sharedAt rewrites the shared conflist at another cniVersion.
func (e *env) sharedAt(version string) {
	e.t.Helper()
	conf := strings.Replace(sharedConflist, `"cniVersion": "1.0.0"`, `"cniVersion": "`+version+`"`, 1)
	if err := os.WriteFile(e.confFile, []byte(conf), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) calls(op testutil.Op) []testutil.Call {
	var out []testutil.Call
	for _, c := range e.cni.Calls() {
		if c.Op == op {
			out = append(out, c)
		}
	}
	return out
}

// TestJoinStatus: at CNI 1.1.0 Join asks STATUS before anything is set up;
// a plugin that is not ready fails the Join with its message and leaves
// nothing. Before 1.1.0 no STATUS is sent.
func TestJoinStatus(t *testing.T) {
	e := newEnv(t)
	e.sharedAt("1.1.0")
	e.boundEndpoint()
	sbox := e.sandbox("c1")
	e.cni.FailNext(testutil.OpStatus, errors.New("plugin type=\"bridge\" failed (status): plugin not available"))
	_, err := e.join(netID(1), epID(1), sbox)
	wantErr(t, err, `CNI network "shared" is not ready (CNI STATUS): plugin type="bridge" failed (status): plugin not available`)
	if n := len(e.calls(testutil.OpAdd)); n != 0 {
		t.Errorf("ADD ran %d times after STATUS failed", n)
	}
	if att := e.endpoint(epID(1)).Attachment; att != nil {
		t.Errorf("attachment recorded after STATUS failed: %+v", att)
	}
	e.mustJoin(netID(1), epID(1), sbox)
	if got := e.calls(testutil.OpStatus); len(got) != 2 || !strings.Contains(string(got[1].Conf), `"cniVersion":"1.1.0"`) {
		t.Errorf("STATUS calls = %d (%v), want 2 of the 1.1.0 list", len(got), got)
	}

	old := newEnv(t)
	old.boundEndpoint()
	old.mustJoin(netID(1), epID(1), old.sandbox("c1"))
	if n := len(old.calls(testutil.OpStatus)); n != 0 {
		t.Errorf("STATUS sent %d times for a 1.0.0 conflist", n)
	}
}

// TestVerifyChecks: CHECK runs over attachments whose interface is where
// ADD put it (handover, direct), with ADD's runtime conf, at most once per
// interval unless asked for all; never in move mode or before 0.4.0. A
// failed CHECK is counted and changes nothing.
func TestVerifyChecks(t *testing.T) {
	e := newEnv(t)
	c := &counts{}
	e.d.count = c
	e.boundEndpoint()
	sbox := e.sandbox("c1")
	e.mustJoin(netID(1), epID(1), sbox)
	add := e.onlyCall(testutil.OpAdd)
	// libnetwork takes the interface back under its ADD name.
	if err := e.ns.Move(testutil.HostNetNS, translate.HostIfName(epID(1)), sbox, "eth0"); err != nil {
		t.Fatal(err)
	}

	if err := e.d.Verify(e.ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	check := e.onlyCall(testutil.OpCheck)
	wantSameRT(t, add.RT, check.RT)
	if string(check.Conf) != string(add.Conf) {
		t.Errorf("CHECK ran another conflist than ADD:\n%s\n%s", check.Conf, add.Conf)
	}
	e.d.Verify(e.ctx, time.Hour)
	if n := len(e.calls(testutil.OpCheck)); n != 1 {
		t.Errorf("CHECK ran %d times within its interval, want 1", n)
	}
	e.cni.FailNext(testutil.OpCheck, errors.New(`plugin type="bridge" failed (check): bridge cni0 not found`))
	if err := e.d.Verify(e.ctx, 0); err != nil {
		t.Errorf("a failed CHECK failed the pass: %v", err)
	}
	if n := len(e.calls(testutil.OpCheck)); n != 2 || c.get(observe.CheckFailed) != 1 {
		t.Errorf("after Verify(0): %d CHECKs, %d counted failed; want 2 and 1", n, c.get(observe.CheckFailed))
	}
	if e.endpoint(epID(1)).Attachment == nil {
		t.Error("a failed CHECK removed the attachment")
	}
	// Gone endpoints leave the schedule.
	if err := e.leave(netID(1), epID(1)); err != nil {
		t.Fatal(err)
	}
	e.d.Verify(e.ctx, 0)
	if n := len(e.calls(testutil.OpCheck)); n != 2 {
		t.Errorf("CHECK ran for a detached endpoint")
	}
	if _, err := e.d.DeleteEndpoint(e.ctx, &network.DeleteEndpointRequest{NetworkID: netID(1), EndpointID: epID(1)}); err != nil {
		t.Fatal(err)
	}
	e.d.Verify(e.ctx, 0)
	if n := len(e.d.checked); n != 0 {
		t.Errorf("%d endpoints left in the CHECK schedule after DeleteEndpoint", n)
	}

	for name, setup := range map[string]func(e *env) string{
		"move": func(e *env) string { e.boundEndpoint(); return filepath.Join(e.dir, "docker", "netns", "not-yet") },
		// Docker 20.10 on docker network connect: handover, but
		// libnetwork names the interface itself.
		"renamed": func(e *env) string {
			e.boundEndpoint()
			sbox := e.sandbox("c1")
			e.mustJoin(netID(1), epID(1), sbox)
			if err := e.ns.Move(testutil.HostNetNS, translate.HostIfName(epID(1)), sbox, "eth1"); err != nil {
				t.Fatal(err)
			}
			return ""
		},
		// docker run --mac-address on a bound chain that cannot set it:
		// libnetwork sets it as it takes the interface over.
		"libnetwork's MAC": func(e *env) string {
			e.mustCreateNetwork(netID(1), bound("shared"), map[string]any{})
			if _, err := e.d.CreateEndpoint(e.ctx, &network.CreateEndpointRequest{NetworkID: netID(1), EndpointID: epID(1),
				Interface: &network.EndpointInterface{Address: "10.88.0.7/24", MacAddress: "02:42:0a:58:00:07"}}); err != nil {
				t.Fatal(err)
			}
			return e.sandbox("c1")
		},
		"0.3.1": func(e *env) string {
			e.sharedAt("0.3.1")
			e.boundEndpoint()
			return e.sandbox("c1")
		},
	} {
		e := newEnv(t)
		if key := setup(e); key != "" {
			e.mustJoin(netID(1), epID(1), key)
		}
		e.d.Verify(e.ctx, 0)
		if n := len(e.calls(testutil.OpCheck)); n != 0 {
			t.Errorf("%s: CHECK ran %d times", name, n)
		}
	}
	off := newEnv(t)
	off.boundEndpoint()
	off.mustJoin(netID(1), epID(1), off.sandbox("c1"))
	off.d.Verify(off.ctx, -1)
	if n := len(off.calls(testutil.OpCheck)); n != 0 {
		t.Errorf("CHECK ran %d times with CHECK turned off", n)
	}
}

// TestVerifyGC: GC runs over a generated 1.1.0 network with its live
// attachments as the valid ones; never over a bound network (its plugins
// keep the pods' attachments) nor before 1.1.0.
func TestVerifyGC(t *testing.T) {
	e := newEnv(t)
	c := &counts{}
	e.d.count = c
	e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(translate.OptVersion, "1.1.0"))
	e.createEndpoint(netID(1), epID(1), "web")
	e.createEndpoint(netID(1), epID(2), "db")
	e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
	if err := e.d.Verify(e.ctx, -1); err != nil {
		t.Fatal(err)
	}
	gc := e.onlyCall(testutil.OpGC)
	if want := []types.GCAttachment{{ContainerID: epID(1), IfName: "eth0"}}; len(gc.Valid) != 1 || gc.Valid[0] != want[0] {
		t.Errorf("GC valid attachments = %+v, want %+v", gc.Valid, want)
	}
	if !strings.Contains(string(gc.Conf), `"name":"`+e.network(netID(1)).CNINetwork+`"`) {
		t.Errorf("GC ran another conflist: %s", gc.Conf)
	}
	if c.get(observe.NetworkCollected) != 1 {
		t.Errorf("GC counted %d times", c.get(observe.NetworkCollected))
	}
	e.cni.FailNext(testutil.OpGC, errors.New("boom"))
	wantErr(t, e.d.Verify(e.ctx, -1), "network a10001ffffff: CNI GC: boom")

	for name, setup := range map[string]func(e *env){
		"bound 1.1.0": func(e *env) { e.sharedAt("1.1.0"); e.boundEndpoint() },
		"generated 1.0.0": func(e *env) {
			e.mustCreateNetwork(netID(1), subnet("10.30.0.0/24"), generic(translate.OptVersion, "1.0.0"))
		},
	} {
		e := newEnv(t)
		setup(e)
		e.d.Verify(e.ctx, -1)
		if n := len(e.calls(testutil.OpGC)); n != 0 {
			t.Errorf("%s: GC ran %d times", name, n)
		}
	}
}
