package main

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	subnetV4       = "FLANNEL_NETWORK=10.231.200.0/22\nFLANNEL_SUBNET=10.231.201.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
	subnetV4NoMasq = "FLANNEL_NETWORK=10.231.200.0/22\nFLANNEL_SUBNET=10.231.201.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n"
	subnetDual     = "# comment\nFLANNEL_NETWORK=10.231.200.0/22,10.231.202.0/23,10.231.200.0/22\n" +
		"FLANNEL_SUBNET=10.231.201.1/24\nFLANNEL_IPV6_NETWORK=fd00:fe17::/48\n" +
		"FLANNEL_IPV6_SUBNET=fd00:fe17:0:1::1/64\nFLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\nOTHER=x\n"
)

// TestDelegateConf compares with the delegate confs the real plugin saved
// (commit 092e6d26) for the same input, byte for byte.
func TestDelegateConf(t *testing.T) {
	for _, tc := range []struct {
		name, subnet, conf, want string
	}{{
		name:   "k3s",
		subnet: subnetV4,
		conf:   `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}`,
		want:   `{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.231.201.0/24"}]],"routes":[{"dst":"10.231.200.0/22"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`,
	}, {
		name:   "no masq, no delegate",
		subnet: subnetV4NoMasq,
		conf:   `{"cniVersion":"1.0.0","name":"cbr0","type":"flannel"}`,
		want:   `{"cniVersion":"1.0.0","ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.231.201.0/24"}]],"routes":[{"dst":"10.231.200.0/22"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`,
	}, {
		name:   "no cniVersion",
		subnet: subnetV4,
		conf:   `{"name":"nover","type":"flannel"}`,
		want:   `{"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.231.201.0/24"}]],"routes":[{"dst":"10.231.200.0/22"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"nover","type":"bridge"}`,
	}, {
		name:   "static ipam passed through",
		subnet: subnetV4,
		conf:   `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","ipam":{"type":"static","addresses":[{"address":"10.231.201.77/24","gateway":"10.231.201.1"}]}}`,
		want:   `{"cniVersion":"0.3.1","ipMasq":false,"ipam":{"addresses":[{"address":"10.231.201.77/24","gateway":"10.231.201.1"}],"ranges":[[{"subnet":"10.231.201.0/24"}]],"routes":[{"dst":"10.231.200.0/22"}],"type":"static"},"isGateway":true,"mtu":1450,"name":"cbr0","type":"bridge"}`,
	}, {
		name:   "runtimeConfig copied",
		subnet: subnetV4,
		conf:   `{"cniVersion":"0.3.1","name":"cbr0","type":"flannel","runtimeConfig":{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}}`,
		want:   `{"cniVersion":"0.3.1","ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.231.201.0/24"}]],"routes":[{"dst":"10.231.200.0/22"}],"type":"host-local"},"isGateway":true,"mtu":1450,"name":"cbr0","runtimeConfig":{"portMappings":[{"containerPort":80,"hostPort":18080,"protocol":"tcp"}]},"type":"bridge"}`,
	}, {
		name:   "dual stack, ipvlan, own routes and keys",
		subnet: subnetDual,
		conf: `{"cniVersion":"1.1.0","name":"n2","type":"flannel","delegate":{"type":"ipvlan","master":"fltest9","mtu":9000,"ipMasq":true,"cniVersion":"0.4.0"},` +
			`"ipam":{"type":"host-local","dataDir":"/tmp/fltest/hl","routes":[{"dst":"10.96.0.0/12"},{"dst":"192.168.244.0/24","gw":"10.231.201.20"}],"unknown":"kept","ranges":"overwritten"}}`,
		want: `{"cniVersion":"1.1.0","ipMasq":true,"ipam":{"dataDir":"/tmp/fltest/hl","ranges":[[{"subnet":"10.231.201.0/24"}],[{"subnet":"fd00:fe17:0:1::/64"}]],` +
			`"routes":[{"dst":"10.96.0.0/12"},{"dst":"192.168.244.0/24","gw":"10.231.201.20"},{"dst":"10.231.200.0/22"},{"dst":"10.231.202.0/23"},{"dst":"fd00:fe17::/48"}],` +
			`"type":"host-local","unknown":"kept"},"master":"fltest9","mtu":9000,"name":"n2","type":"ipvlan"}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := build(tc.subnet, tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("delegate conf\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestDelegateConfErrors(t *testing.T) {
	for _, tc := range []struct {
		name, subnet, conf, want string
	}{
		{"delegate name", subnetV4, `{"name":"e","delegate":{"name":"x"}}`, "name must not be set"},
		{"delegate ipam", subnetV4, `{"name":"e","delegate":{"ipam":{}}}`, "ipam must not be set"},
		{"delegate type", subnetV4, `{"name":"e","delegate":{"type":5}}`, "type must be a string"},
		{"bad routes", subnetV4, `{"name":"e","ipam":{"routes":"bad"}}`, "parse routes"},
		{"partial subnet file", "FLANNEL_SUBNET=10.231.201.1/24\nFLANNEL_IPMASQ=true\n", `{"name":"e"}`,
			"missing FLANNEL_NETWORK, FLANNEL_IPV6_NETWORK, FLANNEL_MTU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := build(tc.subnet, tc.conf)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func build(subnet, conf string) (string, error) {
	env, err := parseSubnetEnv(strings.NewReader(subnet))
	if err != nil {
		return "", err
	}
	n, err := loadConf([]byte(conf))
	if err != nil {
		return "", err
	}
	d, err := delegateConf(n, env)
	if err != nil {
		return "", err
	}
	out, err := json.Marshal(d)
	return string(out), err
}
