package translate_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

// calicoList is a Calico conflist as calico-node installs it, with main
// plugin keys extra (JSON object members, without braces) and its ipam
// section.
func calicoList(extra, ipam string) []byte {
	return []byte(`{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
		{"type":"calico","log_level":"info","mtu":1440,"nodename_file_optional":true,` + extra + `"ipam":` + ipam + `,"policy":{"type":"k8s"}},
		{"type":"portmap","snat":true,"capabilities":{"portMappings":true}},
		{"type":"bandwidth","capabilities":{"bandwidth":true}}]}`)
}

// TestIPAMRunConf: the IPAM plugin run on its own gets the main plugin's
// settings (what the main plugin hands it when it delegates), with the
// network's name and version, the pool's ipam section, and none of the
// keys that belong to one run.
func TestIPAMRunConf(t *testing.T) {
	for _, tc := range []struct {
		name string
		list []byte
		// want are top-level keys of the run's configuration and their
		// JSON; absent keys must not be there.
		want   map[string]string
		absent []string
	}{
		{"calico etcd: datastore and node name", calicoList(`"datastore_type":"etcdv3","etcd_endpoints":"http://127.0.0.1:2379","nodename":"n1",`, `{"type":"calico-ipam"}`),
			map[string]string{"type": `"calico"`, "datastore_type": `"etcdv3"`, "etcd_endpoints": `"http://127.0.0.1:2379"`, "nodename": `"n1"`,
				"name": `"k8s-pod-network"`, "cniVersion": `"0.3.1"`, "ipam": `{"type":"calico-ipam"}`, "policy": `{"type":"k8s"}`},
			nil},
		{"calico kdd: kubeconfig through the ptp that replaces calico", calicoList(`"datastore_type":"kubernetes","kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"},`, `{"type":"calico-ipam"}`),
			map[string]string{"type": `"ptp"`, "datastore_type": `"kubernetes"`, "kubernetes": `{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"}`,
				"nodename_file_optional": "true", "ipam": `{"routes":[{"dst":"0.0.0.0/0"}],"type":"calico-ipam"}`},
			nil},
		{"per-run keys of the main plugin are dropped", []byte(`{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"bridge","bridge":"br9",
			"capabilities":{"mac":true},"runtimeConfig":{"mac":"x"},"args":{"cni":{"ips":["10.0.0.9"]}},"prevResult":{},"ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}]}`),
			map[string]string{"type": `"bridge"`, "bridge": `"br9"`}, []string{"capabilities", "runtimeConfig", "args", "prevResult"}},
		{"the ipam section of a later plugin: that plugin's settings", []byte(`{"name":"n","cniVersion":"1.0.0","plugins":[{"type":"tuning","sysctl":{}},
			{"type":"macvlan","master":"eth9","ipam":{"type":"whereabouts","range":"10.0.0.0/24","kubernetes":{"kubeconfig":"/k"}}}]}`),
			map[string]string{"type": `"macvlan"`, "master": `"eth9"`}, []string{"sysctl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := translate.ParseList(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			ipam, err := pl.IPAM()
			if err != nil {
				t.Fatal(err)
			}
			b, err := pl.IPAMRunConf(ipam)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]json.RawMessage
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("%s = %s, want %s (all: %s)", k, got[k], v, b)
				}
			}
			for _, k := range tc.absent {
				if _, has := got[k]; has {
					t.Errorf("%s passed to the IPAM run: %s", k, b)
				}
			}
		})
	}
}

// TestCalicoSubstitution: Calico's main plugin on the Kubernetes datastore
// (as Calico decides it) is replaced by ptp with the same settings and
// ipam section, given Calico's default routes where it states none; on
// etcd it runs as it is.
func TestCalicoSubstitution(t *testing.T) {
	for _, tc := range []struct {
		name, extra, ipam string
		// wantTypes is the chain run; wantRoutes the ptp's ipam routes.
		wantTypes  []string
		wantRoutes string
	}{
		{"datastore_type kubernetes", `"datastore_type":"kubernetes",`, `{"type":"calico-ipam"}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"0.0.0.0/0"}]`},
		{"no datastore_type, no etcd: kubernetes", ``, `{"type":"calico-ipam"}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"0.0.0.0/0"}]`},
		{"kubernetes although etcd endpoints are given", `"datastore_type":"kubernetes","etcd_endpoints":"http://e:2379",`, `{"type":"calico-ipam"}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"0.0.0.0/0"}]`},
		{"dual stack", `"datastore_type":"kubernetes",`, `{"type":"calico-ipam","assign_ipv4":"true","assign_ipv6":"true"}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"0.0.0.0/0"},{"dst":"::/0"}]`},
		{"IPv6 only", `"datastore_type":"kubernetes",`, `{"type":"calico-ipam","assign_ipv4":"false","assign_ipv6":"true"}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"::/0"}]`},
		{"routes of the section kept", `"datastore_type":"kubernetes",`, `{"type":"host-local","subnet":"10.9.0.0/24","routes":[{"dst":"10.0.0.0/8"}]}`, []string{"ptp", "portmap", "bandwidth"}, `[{"dst":"10.0.0.0/8"}]`},
		{"etcd by datastore_type", `"datastore_type":"etcdv3","etcd_endpoints":"http://e:2379",`, `{"type":"calico-ipam"}`, []string{"calico", "portmap", "bandwidth"}, ``},
		{"etcd by its endpoints", `"etcd_endpoints":"http://e:2379",`, `{"type":"calico-ipam"}`, []string{"calico", "portmap", "bandwidth"}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := translate.ParseList(calicoList(tc.extra, tc.ipam))
			if err != nil {
				t.Fatal(err)
			}
			if got := pl.PluginTypes(); !reflect.DeepEqual(got, tc.wantTypes) {
				t.Fatalf("chain %v, want %v", got, tc.wantTypes)
			}
			list, err := pl.WithStaticIPAM(nil)
			if err != nil {
				t.Fatal(err)
			}
			var l struct {
				Plugins []map[string]json.RawMessage `json:"plugins"`
			}
			if err := json.Unmarshal(list, &l); err != nil {
				t.Fatal(err)
			}
			main := l.Plugins[0]
			if tc.wantTypes[0] == "calico" {
				if pl.Substitution() != "" {
					t.Errorf("substitution %q on etcd", pl.Substitution())
				}
				return
			}
			if pl.Substitution() != translate.SubstitutedCalicoKDD {
				t.Errorf("substitution %q", pl.Substitution())
			}
			var ipam struct {
				Routes json.RawMessage `json:"routes"`
			}
			_ = json.Unmarshal(main["ipam"], &ipam)
			if string(ipam.Routes) != tc.wantRoutes {
				t.Errorf("ptp routes %s, want %s", ipam.Routes, tc.wantRoutes)
			}
			if string(main["mtu"]) != "1440" || string(main["nodename_file_optional"]) != "true" {
				t.Errorf("ptp lost calico's settings: %s", list)
			}
			if _, masq := main["ipMasq"]; masq {
				t.Errorf("ptp masquerades: %s", list)
			}
		})
	}
}

// TestArgsFor: containers get K8S_POD_* identity unless a plugin of the
// chain (or its IPAM plugin) looks the pod up with it; forcing it there is
// refused with the reason; none is always allowed.
func TestArgsFor(t *testing.T) {
	bridge := []byte(`{"name":"b","cniVersion":"1.0.0","plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"10.0.0.0/24"}}]}`)
	bridgeCalicoIPAM := []byte(`{"name":"b","cniVersion":"1.0.0","plugins":[{"type":"bridge","ipam":{"type":"calico-ipam"}}]}`)
	etcd := calicoList(`"etcd_endpoints":"http://e:2379",`, `{"type":"calico-ipam"}`)
	kdd := calicoList(`"datastore_type":"kubernetes",`, `{"type":"calico-ipam"}`)
	for _, tc := range []struct {
		name, opt  string
		list       []byte
		want, fail string
	}{
		{"bridge: pod identity", "", bridge, translate.ArgsK8s, ""},
		{"bridge: none on request", "none;ZONE=a", bridge, translate.ArgsNone, ""},
		{"calico etcd: none", "", etcd, translate.ArgsNone, ""},
		{"calico kdd (ptp + calico-ipam): none", "", kdd, translate.ArgsNone, ""},
		{"calico-ipam under bridge: none", "", bridgeCalicoIPAM, translate.ArgsNone, ""},
		{"calico etcd: k8s refused", "k8s", etcd, "", `-o cni.args=k8s: CNI network "k8s-pod-network" runs calico, which looks the pod up when CNI_ARGS carry K8S_POD_NAMESPACE and K8S_POD_NAME: calico takes its Kubernetes path`},
		{"calico kdd: k8s refused for calico-ipam", "k8s", kdd, "", `runs calico, which looks the pod up`},
		{"calico-ipam: k8s refused", "k8s;A=1", bridgeCalicoIPAM, "", `runs calico-ipam, which looks the pod up when CNI_ARGS carry K8S_POD_NAMESPACE and K8S_POD_NAME: calico-ipam records the pod on the allocation`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, err := translate.ParseList(tc.list)
			if err != nil {
				t.Fatal(err)
			}
			na, err := translate.ParseNetworkArgs(tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got, err := pl.ArgsFor(na)
			switch {
			case tc.fail != "":
				if err == nil || !strings.Contains(err.Error(), tc.fail) {
					t.Fatalf("ArgsFor = %+v, %v; want an error holding %q", got, err, tc.fail)
				}
			case err != nil:
				t.Fatal(err)
			case got.Identity != tc.want || !reflect.DeepEqual(got.Pairs, na.Pairs):
				t.Fatalf("ArgsFor(%+v) = %+v, want identity %s and the option's pairs", na, got, tc.want)
			}
		})
	}
}

// TestParseNetworkArgs: -o cni.args is a ';' list of the word k8s or none
// and KEY=value pairs; the K8S_* keys are docker-cni's.
func TestParseNetworkArgs(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want translate.NetworkArgs
		fail string
	}{
		{"", translate.NetworkArgs{}, ""},
		{"none", translate.NetworkArgs{Identity: "none"}, ""},
		{" k8s ; ZONE=a;APP=web", translate.NetworkArgs{Identity: "k8s", Pairs: [][2]string{{"APP", "web"}, {"ZONE", "a"}}}, ""},
		{"ZONE=a", translate.NetworkArgs{Pairs: [][2]string{{"ZONE", "a"}}}, ""},
		{"k8s;none", translate.NetworkArgs{}, "option cni.args: give one of k8s and none, once"},
		{"pod", translate.NetworkArgs{}, `option cni.args: "pod" is neither k8s, none nor KEY=value`},
		{"K8S_POD_NAME=x", translate.NetworkArgs{}, "option cni.args: K8S_POD_NAME is set by docker-cni (-o cni.args=k8s sends K8S_POD_* identity"},
		{"IgnoreUnknown=0", translate.NetworkArgs{}, "option cni.args: IgnoreUnknown is set by docker-cni"},
		{"A=1;A=2", translate.NetworkArgs{}, "option cni.args: A given twice"},
		{"9A=1", translate.NetworkArgs{}, `option cni.args: "9A" is not a valid CNI arg name`},
		{"A=b=c", translate.NetworkArgs{}, `option cni.args: CNI arg A: value "b=c" must not hold`},
	} {
		got, err := translate.ParseNetworkArgs(tc.opt)
		if tc.fail != "" {
			if err == nil || !strings.Contains(err.Error(), tc.fail) {
				t.Errorf("ParseNetworkArgs(%q) = %+v, %v; want an error holding %q", tc.opt, got, err, tc.fail)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseNetworkArgs(%q) = %+v, %v; want %+v", tc.opt, got, err, tc.want)
		}
	}
}

// TestCNIArgsOfNetwork: the network decides whether pod identity is sent;
// its pairs go to every container, a label's value winning.
func TestCNIArgsOfNetwork(t *testing.T) {
	id := translate.Identity{Name: "web", ContainerID: "c0ffee", Labels: map[string]string{
		translate.LabelPodName: "web-0", translate.LabelCNIArgs: "ZONE=b;X=1",
	}}
	for _, tc := range []struct {
		name string
		na   translate.NetworkArgs
		want [][2]string
	}{
		{"none", translate.NetworkArgs{Identity: "none", Pairs: [][2]string{{"APP", "web"}, {"ZONE", "a"}}},
			[][2]string{{"IgnoreUnknown", "1"}, {"APP", "web"}, {"X", "1"}, {"ZONE", "b"}}},
		{"k8s", translate.NetworkArgs{Identity: "k8s"},
			[][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", "default"}, {"K8S_POD_NAME", "web-0"}, {"K8S_POD_INFRA_CONTAINER_ID", "c0ffee"}, {"X", "1"}, {"ZONE", "b"}}},
	} {
		got, err := translate.CNIArgs(id, "e1", "default", tc.na)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: CNIArgs = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestAgentRefusals: agent-based main plugins are refused naming the pod
// network, what the agent does, and what it would take; whether or not the
// conflist has an ipam section.
func TestAgentRefusals(t *testing.T) {
	for _, tc := range []struct{ list, want string }{
		{`{"name":"antrea","cniVersion":"0.3.0","plugins":[{"type":"antrea","ipam":{"type":"host-local"}},{"type":"portmap","capabilities":{"portMappings":true}}]}`,
			`CNI network "antrea" is Antrea's: the antrea plugin forwards ADD over gRPC to antrea-agent`},
		{`{"name":"cilium","cniVersion":"0.3.1","plugins":[{"type":"cilium-cni","enable-debug":false}]}`,
			`CNI network "cilium" is Cilium's: cilium-cni asks the Cilium agent`},
		{`{"name":"kube-ovn","cniVersion":"0.3.1","plugins":[{"type":"kube-ovn","server_socket":"/run/openvswitch/kube-ovn-daemon.sock","ipam":{"type":"kube-ovn"}}]}`,
			`is Kube-OVN's: the kube-ovn plugin asks the kube-ovn-cni daemon`},
		{`{"name":"ovn-kubernetes","cniVersion":"0.4.0","plugins":[{"type":"ovn-k8s-cni-overlay","ipam":{}}]}`,
			`is OVN-Kubernetes's: ovn-k8s-cni-overlay asks ovnkube-node`},
		{`{"name":"aws-cni","cniVersion":"0.4.0","plugins":[{"type":"aws-cni","mtu":"9001"}]}`,
			`is Amazon VPC CNI's: aws-cni asks ipamd`},
	} {
		pl, err := translate.ParseList([]byte(tc.list))
		if err != nil {
			t.Fatal(err)
		}
		_, err = pl.IPAM()
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "A Docker container is no pod") {
			t.Errorf("IPAM of %s: %v, want an error holding %q", tc.list, err, tc.want)
		}
	}
}

// TestUnusableAddress: Docker cannot give a container its subnet's gateway,
// nor, in IPv4, the network or broadcast address.
func TestUnusableAddress(t *testing.T) {
	sub, gw := netip.MustParsePrefix("10.248.0.0/16"), netip.MustParseAddr("10.248.0.1")
	for a, want := range map[string]string{
		"10.248.0.1": "gateway", "10.248.0.0": "network address", "10.248.255.255": "broadcast address",
		"10.248.7.0": "", "10.248.0.2": "",
	} {
		if got := translate.UnusableAddress(sub, gw, netip.MustParseAddr(a)); got != want {
			t.Errorf("UnusableAddress(%s) = %q, want %q", a, got, want)
		}
	}
	v6 := netip.MustParsePrefix("fd00:248::/64")
	if got := translate.UnusableAddress(v6, netip.MustParseAddr("fd00:248::1"), netip.MustParseAddr("fd00:248::")); got != "" {
		t.Errorf("IPv6 subnet-router address: %q, want usable", got)
	}
}
