package overlay

import (
	"net/netip"
	"slices"
	"testing"
)

// These need no root: the pure parts.

var testNet = Network{Network: netip.MustParsePrefix("10.250.0.0/16"), SubnetLen: 24, VNI: 250}

func TestNetworkJSON(t *testing.T) {
	want := `{"Backend":{"Type":"vxlan","VNI":250},"Network":"10.250.0.0/16","SubnetLen":24}`
	if got := testNet.JSON(); got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
	withPort := testNet
	withPort.Port = 8250
	if got := withPort.JSON(); got != `{"Backend":{"Port":8250,"Type":"vxlan","VNI":250},"Network":"10.250.0.0/16","SubnetLen":24}` {
		t.Errorf("JSON with a port: %s", got)
	}
	if testNet.Link() != "flannel.250" {
		t.Errorf("link %s", testNet.Link())
	}
}

func TestLeaseKey(t *testing.T) {
	if got := LeaseKey("/e2efl/network", netip.MustParsePrefix("10.250.7.1/24")); got != "/e2efl/network/subnets/10.250.7.0-24" {
		t.Errorf("lease key %s", got)
	}
}

func TestParseGet(t *testing.T) {
	// etcdctl get --prefix -w json, for a config of several lines and a lease.
	out := `{"header":{"cluster_id":1,"member_id":2,"revision":3,"raft_term":2},"kvs":[` +
		`{"key":"L2NvcmVvcy5jb20vbmV0d29yay9jb25maWc=","create_revision":2,"mod_revision":2,"version":1,"value":"ewogICJOZXR3b3JrIjogIjEwLjI1MC4wLjAvMTYiCn0K"},` +
		`{"key":"L2NvcmVvcy5jb20vbmV0d29yay9zdWJuZXRzLzEwLjI1MC43LjAtMjQ=","create_revision":3,"mod_revision":3,"version":1,"value":"eyJQdWJsaWNJUCI6IjEwLjI1MS4wLjIifQ=="}],"count":2}`
	kv, err := parseGet([]byte(out))
	if err != nil || len(kv) != 2 || kv["/coreos.com/network/subnets/10.250.7.0-24"] != `{"PublicIP":"10.251.0.2"}` ||
		kv["/coreos.com/network/config"] != "{\n  \"Network\": \"10.250.0.0/16\"\n}\n" {
		t.Errorf("parseGet: %q, %v", kv, err)
	}
	if kv, err := parseGet([]byte(`{"header":{"revision":3},"count":0}`)); err != nil || len(kv) != 0 {
		t.Errorf("parseGet of nothing: %v, %v", kv, err)
	}
	if _, err := parseGet([]byte("Error: context deadline exceeded")); err == nil {
		t.Error("parseGet of an error: no error")
	}
}

func TestEtcdArgs(t *testing.T) {
	got := etcdArgs("/d", []string{"http://127.0.0.1:22379", "http://10.251.0.1:22379"}, "http://127.0.0.1:22380")
	want := []string{"--name", "e2efl", "--data-dir", "/d/data",
		"--listen-client-urls", "http://127.0.0.1:22379,http://10.251.0.1:22379",
		"--advertise-client-urls", "http://127.0.0.1:22379,http://10.251.0.1:22379",
		"--listen-peer-urls", "http://127.0.0.1:22380", "--initial-advertise-peer-urls", "http://127.0.0.1:22380",
		"--initial-cluster", "e2efl=http://127.0.0.1:22380", "--logger", "zap"}
	if !slices.Equal(got, want) {
		t.Errorf("etcd args\n%q\nwant\n%q", got, want)
	}
}

func TestFlanneldArgs(t *testing.T) {
	f := &Flanneld{Endpoints: "http://10.251.0.1:22379", Prefix: "/e2efl/network", Iface: "e2efl2n", SubnetFile: "/x/subnet.env"}
	want := []string{"--etcd-endpoints", "http://10.251.0.1:22379", "--etcd-prefix", "/e2efl/network",
		"--iface", "e2efl2n", "--ip-masq", "--subnet-file", "/x/subnet.env"}
	if got := f.Args(); !slices.Equal(got, want) {
		t.Errorf("flanneld args %q, want %q", got, want)
	}
}

// The rules flanneld v0.28 writes for 10.250.0.0/16 with --ip-masq are
// ours; another network's are not.
func TestOurRule(t *testing.T) {
	for rule, want := range map[string]bool{
		`-A FLANNEL-FWD -s 10.250.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`:                                      true,
		`-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN`:                         true,
		`-A FLANNEL-POSTRTG -s 10.250.20.0/24 -d 10.250.0.0/16 -m comment --comment "flanneld masq" -j RETURN`:                   true,
		`-A FLANNEL-POSTRTG ! -s 10.250.0.0/16 -d 10.250.20.0/24 -m comment --comment "flanneld masq" -j RETURN`:                 true,
		`-A FLANNEL-POSTRTG -s 10.250.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`: true,
		`-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`:                                      false,
		`-A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`: false,
	} {
		if got := ourRule(rule, testNet); got != want {
			t.Errorf("ourRule(%s) = %v, want %v", rule, got, want)
		}
	}
}
