package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetworkCreateRequest: `docker-cni network create --bind` fills in what
// Docker needs from the conflist (and flannel's subnet file).
func TestNetworkCreateRequest(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "subnet.env")
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("subnet.env", "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\nFLANNEL_IPV6_NETWORK=fd42::/56\nFLANNEL_IPV6_SUBNET=fd42:0:0:3::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n")
	write("10-flannel.conflist", `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","subnetFile":"`+env+`","delegate":{"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}`)
	write("20-calico.conflist", `{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[{"type":"calico","ipam":{"type":"calico-ipam"}}]}`)
	for _, tc := range []struct {
		args []string
		want string // the request, as JSON, or the error must hold each of these
	}{
		{[]string{"podnet", "--bind", "cbr0", "--label", "team=k8s"},
			`{"Subnet":"10.42.3.0/24","Gateway":"10.42.3.1"}|{"Subnet":"fd42:0:0:3::/64","Gateway":"fd42:0:0:3::1"}|"cni.network":"cbr0"|"cni.version":"0.3.1"|"team":"k8s"|"Driver":"cni"|"EnableIPv6":true`},
		{[]string{"calinet", "--bind", "k8s-pod-network", "--subnet", "10.244.7.0/24", "--gateway", "10.244.7.254", "--opt", "cni.join=direct"},
			`{"Subnet":"10.244.7.0/24","Gateway":"10.244.7.254"}|"cni.join":"direct"|"EnableIPv6":false`},
		{[]string{"calinet", "--bind", "k8s-pod-network"}, `give the CIDR of the IPv4 pool its containers get addresses from with --subnet (calicoctl get ippools -o wide lists them)`},
		{[]string{"x", "--bind", "nope"}, `error: CNI network "nope" not found`},
		{[]string{"--bind", "cbr0"}, `error: usage: docker-cni network create NAME --bind CNI_NETWORK`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, err := parseCreate(append(tc.args, "--cni-conf-dir", dir), io.Discard)
			got := ""
			if err == nil {
				req, rerr := f.request()
				err = rerr
				b, _ := json.Marshal(req)
				got = string(b)
			}
			if err != nil {
				got = "error: " + err.Error()
			}
			for _, w := range strings.Split(tc.want, "|") {
				if !strings.Contains(got, w) {
					t.Errorf("request %s\ndoes not hold %s", got, w)
				}
			}
		})
	}
}
