package driver

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/internal/testutil"
	"github.com/docker-cni/docker-cni/translate"
)

// calicoConflist is a node's Calico conflist on the given datastore keys.
func calicoConflist(datastore string) string {
	return `{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
	  {"type":"calico",` + datastore + `"nodename":"node-1","mtu":1440,"ipam":{"type":"calico-ipam"},"policy":{"type":"k8s"}},
	  {"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]}`
}

// calicoEndpoint binds network 1 to a Calico conflist (--subnet: the pool
// is in Calico's datastore) with opts and makes endpoint 1 on it, the fake
// calico-ipam handing out 10.248.0.5.
func (e *env) calicoEndpoint(datastore string, opts map[string]any) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.confDir, "20-calico.conflist"), []byte(calicoConflist(datastore)), 0o644); err != nil {
		e.t.Fatal(err)
	}
	req := bound("k8s-pod-network")
	req.Pool = "10.248.0.0/16"
	e.mustCreateNetwork(netID(1), req, opts)
	e.cni.SetResult(testutil.OpPluginAdd, &current.Result{CNIVersion: "1.0.0", IPs: []*current.IPConfig{
		{Address: net.IPNet{IP: net.ParseIP("10.248.0.5").To4(), Mask: net.CIDRMask(26, 32)}}}})
	e.createEndpoint(netID(1), epID(1), "web")
}

// TestJoinArgsOfNetwork: -o cni.args decides the CNI_ARGS of every
// container of the network; Calico's networks send no K8S_POD_* args by
// default and refuse them; on Calico's Kubernetes datastore the chain run
// is ptp with the reserved address, and calico-ipam reserved it with
// Calico's datastore settings.
func TestJoinArgsOfNetwork(t *testing.T) {
	t.Run("none and pairs on a bridge network", func(t *testing.T) {
		e := newEnv(t)
		e.mustCreateNetwork(netID(1), bound("shared"), generic(translate.OptArgs, "none;ZONE=z1"))
		e.createEndpoint(netID(1), epID(1), "web")
		e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
		args := e.onlyCall(testutil.OpAdd).RT.Args
		if !hasArg(args, "ZONE", "z1") || !hasArg(args, "IgnoreUnknown", "1") {
			t.Errorf("ADD CNI_ARGS %q, want IgnoreUnknown and ZONE=z1", args)
		}
		for _, a := range args {
			if a[0] == "K8S_POD_NAME" || a[0] == "K8S_POD_NAMESPACE" {
				t.Errorf("ADD CNI_ARGS %q carry pod identity on a -o cni.args=none network", args)
			}
		}
	})
	t.Run("calico etcd: no pod identity", func(t *testing.T) {
		e := newEnv(t)
		e.calicoEndpoint(`"datastore_type":"etcdv3","etcd_endpoints":"http://127.0.0.1:23790",`, map[string]any{})
		res := e.onlyCall(testutil.OpPluginAdd)
		if res.PluginType != "calico-ipam" || !json.Valid(res.Conf) {
			t.Fatalf("reservation ran %s", res.PluginType)
		}
		var conf map[string]any
		_ = json.Unmarshal(res.Conf, &conf)
		if conf["etcd_endpoints"] != "http://127.0.0.1:23790" || conf["nodename"] != "node-1" {
			t.Errorf("calico-ipam ran without calico's datastore settings: %s", res.Conf)
		}
		e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
		add := e.onlyCall(testutil.OpAdd)
		for _, a := range add.RT.Args {
			if a[0] == "K8S_POD_NAME" || a[0] == "K8S_POD_NAMESPACE" {
				t.Errorf("ADD CNI_ARGS %q: calico would take its Kubernetes path", add.RT.Args)
			}
		}
		if typ := firstPluginType(t, add.Conf); typ != "calico" {
			t.Errorf("etcd chain runs %s, want calico itself", typ)
		}
	})
	t.Run("calico kdd: ptp with the reserved address", func(t *testing.T) {
		e := newEnv(t)
		e.calicoEndpoint(`"datastore_type":"kubernetes","kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"},`, map[string]any{})
		e.mustJoin(netID(1), epID(1), e.sandbox("c1"))
		add := e.onlyCall(testutil.OpAdd)
		if typ := firstPluginType(t, add.Conf); typ != "ptp" {
			t.Errorf("kdd chain runs %s, want ptp:\n%s", typ, add.Conf)
		}
		if addrs, routes := staticIPAM(t, add.Conf); addrs != "[map[address:10.248.0.5/16 gateway:10.248.0.1]]" || routes != "[map[dst:0.0.0.0/0]]" {
			t.Errorf("ptp's static IPAM: %q, routes %q", addrs, routes)
		}
	})
	t.Run("calico: k8s refused at create", func(t *testing.T) {
		e := newEnv(t)
		if err := os.WriteFile(filepath.Join(e.confDir, "20-calico.conflist"), []byte(calicoConflist(`"etcd_endpoints":"http://127.0.0.1:23790",`)), 0o644); err != nil {
			t.Fatal(err)
		}
		req := bound("k8s-pod-network")
		req.Pool = "10.248.0.0/16"
		_, err := e.d.CreateNetwork(e.ctx, &network.CreateNetworkRequest{NetworkID: netID(1), Options: generic(translate.OptArgs, "k8s"),
			IPv4Data: []*network.IPAMData{e.cniPool(req)}})
		wantErr(t, err, `-o cni.args=k8s: CNI network "k8s-pod-network" runs calico, which looks the pod up`)
		if nws, _ := e.st.Networks(); len(nws) != 0 {
			t.Errorf("refused network stored: %+v", nws)
		}
	})
}

func firstPluginType(t *testing.T, list []byte) string {
	t.Helper()
	var l struct {
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(list, &l); err != nil || len(l.Plugins) == 0 {
		t.Fatalf("conflist %s: %v", list, err)
	}
	return l.Plugins[0].Type
}
