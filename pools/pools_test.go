package pools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

type env struct {
	t       *testing.T
	ctx     context.Context
	dir     string
	confDir string
	cni     *testutil.Runner
	st      testutil.State
	auth    *pools.Authority
	log     bytes.Buffer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), cni: testutil.NewRunner(nil)}
	e.confDir = filepath.Join(e.dir, "net.d")
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	store := state.NewMemory()
	e.st = testutil.State{S: store}
	log := slog.New(slog.NewTextHandler(&e.log, nil))
	e.auth = pools.New(pools.Config{ConfDir: e.confDir, DataDir: filepath.Join(e.dir, "ipam"), NetNS: "/run/ns"}, store, e.cni, log)
	return e
}

func (e *env) write(path, body string) {
	e.t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) bound(name, subnet string) *state.Pool {
	e.t.Helper()
	p, err := e.auth.Request(e.ctx, pools.Request{AddressSpace: cnm.LocalSpace, Pool: subnet, Options: map[string]string{translate.OptNetwork: name}})
	if err != nil {
		e.t.Fatalf("Request: %v", err)
	}
	return p
}

func (e *env) reserve(poolID, want string) (netip.Prefix, error) {
	var w netip.Addr
	if want != "" {
		w = netip.MustParseAddr(want)
	}
	return e.auth.Reserve(e.ctx, poolID, w, "web")
}

// TestFlannelLease: a flannel network's pool is the node's lease from its
// subnet file, reservations land in the store flannel's delegate uses
// (host-local under the conflist's name), and a new lease is followed by new
// reservations, with a warning about the running containers.
func TestFlannelLease(t *testing.T) {
	e := newEnv(t)
	envFile := filepath.Join(e.dir, "subnet.env")
	e.write(envFile, "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	e.write(filepath.Join(e.confDir, "10-flannel.conflist"), `{"name":"cbr0","cniVersion":"0.3.1","plugins":[
		{"type":"flannel","subnetFile":"`+envFile+`","delegate":{"hairpinMode":true,"isDefaultGateway":true}},
		{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	p := e.bound("cbr0", "")
	if p.Subnet != "10.42.3.0/24" || p.Gateway != "10.42.3.1" || p.IPAMType != "host-local" || p.SubnetFile != envFile {
		t.Fatalf("pool = %+v, want the node's lease 10.42.3.0/24 through host-local", p)
	}
	a, err := e.reserve(p.ID, "")
	if err != nil || a.String() != "10.42.3.2/24" {
		t.Fatalf("Reserve = %v, %v; want 10.42.3.2/24", a, err)
	}
	if _, ok := e.cni.Reserved("cbr0")[a.Addr()]; !ok {
		t.Errorf("address not reserved in host-local's store of network cbr0 (flannel's delegate's): %v", e.cni.Reserved("cbr0"))
	}

	e.write(envFile, "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.9.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	b, err := e.reserve(p.ID, "")
	if err != nil || !netip.MustParsePrefix("10.42.9.0/24").Contains(b.Addr()) {
		t.Fatalf("Reserve after the new lease = %v, %v; want an address in 10.42.9.0/24", b, err)
	}
	if got, _ := e.st.Pool(p.ID); got.Subnet != "10.42.9.0/24" || got.Gateway != "10.42.9.1" {
		t.Errorf("pool after the new lease = %+v", got)
	}
	if !strings.Contains(e.log.String(), "flannel gave this node a new subnet") || !strings.Contains(e.log.String(), "old_subnet=10.42.3.0/24") {
		t.Errorf("no warning about the new lease in the log:\n%s", e.log.String())
	}
	// The old reservation is still released by its address.
	if err := e.auth.Release(e.ctx, p.ID, a.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cni.Reserved("cbr0")[a.Addr()]; ok {
		t.Errorf("old-lease address %s not released", a)
	}
}

func TestFlannelWithoutSubnetFile(t *testing.T) {
	e := newEnv(t)
	e.write(filepath.Join(e.confDir, "10-flannel.conflist"), `{"name":"cbr0","cniVersion":"0.3.1","plugins":[
		{"type":"flannel","subnetFile":"`+filepath.Join(e.dir, "none.env")+`","delegate":{}}]}`)
	_, err := e.auth.Request(e.ctx, pools.Request{AddressSpace: cnm.LocalSpace, Options: map[string]string{translate.OptNetwork: "cbr0"}})
	if err == nil || !strings.Contains(err.Error(), "is flanneld running on this node?") {
		t.Errorf("Request without a subnet file = %v", err)
	}
}

// TestStaticNeverTwice: the static plugin gives everyone the same address;
// docker-cni must not hand it to a second endpoint.
func TestStaticNeverTwice(t *testing.T) {
	e := newEnv(t)
	e.write(filepath.Join(e.confDir, "10-fixed.conflist"), `{"name":"fixed","cniVersion":"1.0.0","plugins":[
		{"type":"bridge","ipam":{"type":"static","addresses":[{"address":"10.10.0.5/24","gateway":"10.10.0.1"}]}}]}`)
	p := e.bound("fixed", "")
	if p.Subnet != "10.10.0.0/24" || p.Gateway != "10.10.0.1" {
		t.Fatalf("pool = %+v", p)
	}
	if a, err := e.reserve(p.ID, ""); err != nil || a.String() != "10.10.0.5/24" {
		t.Fatalf("first Reserve = %v, %v", a, err)
	}
	_, err := e.reserve(p.ID, "")
	if err == nil || !strings.Contains(err.Error(), "handed out 10.10.0.5, which another Docker endpoint holds") {
		t.Errorf("second Reserve = %v", err)
	}
	rs, _ := e.st.Reservations()
	if len(rs) != 1 || rs[0].Gateway != "10.10.0.1" {
		t.Errorf("reservations = %+v, want one with the plugin's gateway", rs)
	}
}

// TestUnreadableRanges: an IPAM plugin whose ranges are not in its
// configuration needs --subnet; --gateway then decides the gateway. The
// IPAM plugin runs with its main plugin's settings (calico-ipam reads its
// datastore and node name from the top level), and a requested address
// reaches calico-ipam as the CNI_ARGS key IP.
func TestUnreadableRanges(t *testing.T) {
	e := newEnv(t)
	e.write(filepath.Join(e.confDir, "10-calico.conflist"), `{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
		{"type":"calico","datastore_type":"etcdv3","etcd_endpoints":"http://127.0.0.1:2379","nodename":"node-1",
		 "capabilities":{"portMappings":true},"ipam":{"type":"calico-ipam"}}]}`)
	_, err := e.auth.Request(e.ctx, pools.Request{AddressSpace: cnm.LocalSpace, Options: map[string]string{translate.OptNetwork: "k8s-pod-network"}})
	if err == nil || !strings.Contains(err.Error(), "give the CIDR of the IPv4 pool its containers get addresses from with --subnet") {
		t.Fatalf("Request without --subnet = %v", err)
	}
	p := e.bound("k8s-pod-network", "10.244.7.0/24")
	if !p.GatewayFree {
		t.Errorf("pool %+v: the gateway should be left to --gateway", p)
	}
	gw, err := e.auth.Gateway(e.ctx, p.ID, netip.MustParseAddr("10.244.7.254"))
	if err != nil || gw.String() != "10.244.7.254/24" {
		t.Errorf("Gateway(--gateway 10.244.7.254) = %v, %v", gw, err)
	}
	e.cni.Fail(testutil.OpPluginAdd, nil)
	e.reserve(p.ID, "10.244.7.9")
	calls := e.cni.Calls(testutil.OpPluginAdd)
	if len(calls) != 1 || calls[0].PluginType != "calico-ipam" {
		t.Fatalf("IPAM plugin calls = %+v", calls)
	}
	var conf map[string]any
	if err := json.Unmarshal(calls[0].Conf, &conf); err != nil {
		t.Fatal(err)
	}
	if conf["etcd_endpoints"] != "http://127.0.0.1:2379" || conf["nodename"] != "node-1" || conf["datastore_type"] != "etcdv3" || conf["type"] != "calico" {
		t.Errorf("calico-ipam ran with %s, want calico's datastore and node name at the top level", calls[0].Conf)
	}
	if _, has := conf["capabilities"]; has {
		t.Errorf("calico-ipam ran with the main plugin's capabilities: %s", calls[0].Conf)
	}
	want := [][2]string{{"IgnoreUnknown", "1"}, {"IP", "10.244.7.9"}}
	if !reflect.DeepEqual(calls[0].Args.Args, want) {
		t.Errorf("calico-ipam CNI_ARGS %q, want %q", calls[0].Args.Args, want)
	}
}

// TestReserveRefusesUnusable: an IPAM plugin allocating in blocks of a
// larger pool (calico-ipam) may hand out the network address of Docker's
// subnet: refused naming the fix, and released again.
func TestReserveRefusesUnusable(t *testing.T) {
	e := newEnv(t)
	e.write(filepath.Join(e.confDir, "10-calico.conflist"), `{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
		{"type":"calico","etcd_endpoints":"http://127.0.0.1:2379","ipam":{"type":"calico-ipam"}}]}`)
	p := e.bound("k8s-pod-network", "10.248.0.0/16")
	e.cni.SetResult(testutil.OpPluginAdd, &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{
		{Address: net.IPNet{IP: net.ParseIP("10.248.0.0").To4(), Mask: net.CIDRMask(26, 32)}}}})
	_, err := e.reserve(p.ID, "")
	if err == nil || !strings.Contains(err.Error(), "handed out 10.248.0.0, the network address of Docker's subnet 10.248.0.0/16") ||
		!strings.Contains(err.Error(), "a Calico IPReservation of 10.248.0.0/32") {
		t.Fatalf("Reserve = %v", err)
	}
	if dels := e.cni.Calls(testutil.OpPluginDel); len(dels) != 1 {
		t.Errorf("IPAM DELs after the refusal: %+v, want one", dels)
	}
}

// TestReserveIntent: the reservation's intent is recorded before the IPAM
// plugin runs and gone once the reservation is; a plugin failure undoes
// it; an intent a crash left is released by Recover.
func TestReserveIntent(t *testing.T) {
	e := newEnv(t)
	e.write(filepath.Join(e.confDir, "10-shared.conflist"), `{"name":"shared","cniVersion":"1.0.0","plugins":[
		{"type":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/24"}]]}}]}`)
	p := e.bound("shared", "")
	var seen []*state.Intent
	e.cni.OnCall = func(c testutil.Call) {
		if c.Op == testutil.OpPluginAdd {
			seen, _ = e.intents()
		}
	}
	if _, err := e.reserve(p.ID, ""); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0].PoolID != p.ID || seen[0].Kind != state.IntentReserve {
		t.Errorf("intents while the IPAM plugin ran = %+v, want the reservation's", seen)
	}
	if ins, _ := e.intents(); len(ins) != 0 {
		t.Errorf("intents after the reservation = %+v", ins)
	}

	e.cni.FailNext(testutil.OpPluginAdd, errors.New("host-local: no IP addresses available"))
	if _, err := e.reserve(p.ID, ""); err == nil {
		t.Fatal("Reserve with a failing plugin succeeded")
	}
	if ins, _ := e.intents(); len(ins) != 0 {
		t.Errorf("intents after a failed reservation = %+v", ins)
	}
	adds, dels := e.cni.Calls(testutil.OpPluginAdd), e.cni.Calls(testutil.OpPluginDel)
	if len(dels) != 1 || dels[0].Args.ContainerID != adds[len(adds)-1].Args.ContainerID {
		t.Errorf("after the failed ADD %+v, DEL calls = %+v, want one with its owner", adds[len(adds)-1], dels)
	}

	// A crash between the plugin and the record: the plugin reserved under
	// the intent's owner, nothing recorded the address.
	in := &state.Intent{ID: "docker-crashed", Kind: state.IntentReserve, PoolID: p.ID, IfName: "eth0", IPAMType: p.IPAMType, IPAMConf: p.IPAMConf}
	if err := e.st.S.Update(func(tx *state.Tx) error { return tx.PutIntent(in) }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cni.PluginAdd(e.ctx, "host-local", p.IPAMConf, cnirun.PluginArgs{ContainerID: in.ID, IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.auth.Recover(e.ctx, 0); err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1 released", n, err)
	}
	for a, o := range e.cni.Reserved("shared") {
		if o.ContainerID == in.ID {
			t.Errorf("the crashed reservation %s is still in the store", a)
		}
	}
	if ins, _ := e.intents(); len(ins) != 0 {
		t.Errorf("intents after Recover = %+v", ins)
	}
}

func (e *env) intents() ([]*state.Intent, error) {
	var out []*state.Intent
	err := e.st.S.View(func(tx *state.Tx) (err error) {
		out, err = tx.Intents()
		return err
	})
	return out, err
}

// TestSweepStores: an address held in a host-local store under a
// docker-cni owner no record knows is released; pods' addresses, known
// reservations and young files are left alone.
func TestSweepStores(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.dir, "networks")
	e.write(filepath.Join(e.confDir, "10-shared.conflist"), `{"name":"shared","cniVersion":"1.0.0","plugins":[
		{"type":"bridge","ipam":{"type":"host-local","dataDir":"`+data+`","ranges":[[{"subnet":"10.88.0.0/24"}]]}}]}`)
	p := e.bound("shared", "")
	if _, err := e.reserve(p.ID, ""); err != nil {
		t.Fatal(err)
	}
	rs, _ := e.st.Reservations()
	store := filepath.Join(data, "shared")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"10.88.0.2":          rs[0].OwnerID + "\neth0",
		"10.88.0.7":          "docker-lost00000000000000\neth0",
		"10.88.0.9":          "4b6d0c1e5f2a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c\neth0",
		"last_reserved_ip.0": "10.88.0.9",
	}
	for name, body := range files {
		e.write(filepath.Join(store, name), body)
	}
	e.write(filepath.Join(store, "10.88.0.8"), "docker-young000000000000\neth0")
	old := time.Now().Add(-time.Hour)
	for name := range files {
		os.Chtimes(filepath.Join(store, name), old, old)
	}
	e.cni.ResetCalls()
	if err := e.auth.SweepStores(e.ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	dels := e.cni.Calls(testutil.OpPluginDel)
	if len(dels) != 1 || dels[0].Args.ContainerID != "docker-lost00000000000000" || dels[0].PluginType != "host-local" {
		t.Errorf("releases = %+v, want only docker-lost's", dels)
	}
}

// TestSweepStoresOwnInstanceOnly: another docker-cni instance's entries in
// a store both bind to are not swept.
func TestSweepStoresOwnInstanceOnly(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.dir, "networks")
	e.write(filepath.Join(e.confDir, "10-shared.conflist"), `{"name":"shared","cniVersion":"1.0.0","plugins":[
		{"type":"bridge","ipam":{"type":"host-local","dataDir":"`+data+`","ranges":[[{"subnet":"10.88.0.0/24"}]]}}]}`)
	e.auth = pools.New(pools.Config{ConfDir: e.confDir, DataDir: filepath.Join(e.dir, "ipam"), Instance: "aaaa1111"}, e.st.S, e.cni, slog.New(slog.NewTextHandler(&e.log, nil)))
	p := e.bound("shared", "")
	if a, err := e.reserve(p.ID, ""); err != nil || !strings.HasPrefix(e.reservations(t)[0].OwnerID, "docker-aaaa1111-") {
		t.Fatalf("Reserve = %v, %v; owner %v", a, err, e.reservations(t))
	}
	store := filepath.Join(data, "shared")
	os.MkdirAll(store, 0o755)
	e.write(filepath.Join(store, "10.88.0.7"), "docker-aaaa1111-lost\neth0")
	e.write(filepath.Join(store, "10.88.0.8"), "docker-bbbb2222-theirs\neth0")
	old := time.Now().Add(-time.Hour)
	for _, n := range []string{"10.88.0.7", "10.88.0.8"} {
		os.Chtimes(filepath.Join(store, n), old, old)
	}
	e.cni.ResetCalls()
	if err := e.auth.SweepStores(e.ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	if dels := e.cni.Calls(testutil.OpPluginDel); len(dels) != 1 || dels[0].Args.ContainerID != "docker-aaaa1111-lost" {
		t.Errorf("releases = %+v, want only this instance's lost entry", dels)
	}
}

func (e *env) reservations(t *testing.T) []*state.Reservation {
	rs, err := e.st.Reservations()
	if err != nil {
		t.Fatal(err)
	}
	return rs
}
