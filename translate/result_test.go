package translate_test

import (
	"encoding/json"
	"testing"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/translate"
)

// TestMoveJoinResponse: request.json holds the CNI result of the chain run
// in a scratch netns and the names MoveJoinResponse is given; the golden is
// the Join response as Docker receives it, or the error.
func TestMoveJoinResponse(t *testing.T) {
	runGolden(t, "join", func(t *testing.T, req []byte) (string, []byte) {
		var r struct {
			Result   json.RawMessage `json:"result"`
			IfName   string          `json:"ifName"`
			SrcName  string          `json:"srcName"`
			Internal bool            `json:"internal"`
		}
		decodeStrict(t, req, &r)
		var res current.Result
		if err := json.Unmarshal(r.Result, &res); err != nil {
			t.Fatalf("result: %v", err)
		}
		jr, err := translate.MoveJoinResponse(&res, r.IfName, r.SrcName, r.Internal)
		if err != nil {
			return errorGolden(t, err)
		}
		if jr.InterfaceName == nil || jr.InterfaceName.SrcName != r.SrcName || jr.InterfaceName.DstPrefix != "eth" {
			t.Errorf("InterfaceName = %+v, want {SrcName:%s DstPrefix:eth}", jr.InterfaceName, r.SrcName)
		}
		if !jr.DisableGatewayService {
			t.Error("DisableGatewayService = false: Docker would attach docker_gwbridge")
		}
		if r.Internal && (jr.Gateway != "" || jr.GatewayIPv6 != "") {
			t.Errorf("internal network got gateways %q %q", jr.Gateway, jr.GatewayIPv6)
		}
		return "want.json", pretty(t, jr)
	})
}

func TestDirectJoinResponse(t *testing.T) {
	b, err := json.Marshal(translate.DirectJoinResponse())
	if err != nil {
		t.Fatal(err)
	}
	// No InterfaceName (libnetwork moves nothing), no gateway (it would
	// add a second default route), no docker_gwbridge.
	if want := `{"DisableGatewayService":true}`; string(b) != want {
		t.Errorf("DirectJoinResponse encodes as %s, want %s", b, want)
	}
}

func TestNextIfName(t *testing.T) {
	for _, tc := range []struct {
		existing []string
		want     string
	}{
		{nil, "eth0"},
		{[]string{"lo"}, "eth0"},
		{[]string{"lo", "eth0"}, "eth1"},
		{[]string{"lo", "eth1"}, "eth0"},
		{[]string{"eth0", "eth1", "eth3"}, "eth2"},
		{[]string{"eth2", "eth0", "eth1"}, "eth3"},
		{[]string{"eth0", "ethX", "eth", "veth1", "net1"}, "eth1"},
		{[]string{"eth0", "eth1", "eth2", "eth3", "eth4", "eth5", "eth6", "eth7", "eth8", "eth9", "eth10"}, "eth11"},
	} {
		if got := translate.NextIfName(tc.existing); got != tc.want {
			t.Errorf("NextIfName(%q) = %q, want %q", tc.existing, got, tc.want)
		}
	}
}

func TestHostIfName(t *testing.T) {
	for _, tc := range []struct{ endpoint, want string }{
		{"cf5dd77156b046fd5a4a664ba1dac766f2ddafcddc731a3ee5491eb6b0fc35a2", "dcnicf5dd77156b"},
		{"9e9aabb3d4212cc419b3232b0cde4449fb18c3b45bf53e0f73027a0fae809e98", "dcni9e9aabb3d42"},
		{"abc", "dcniabc"},
		{"", "dcni"},
	} {
		got := translate.HostIfName(tc.endpoint)
		if got != tc.want {
			t.Errorf("HostIfName(%q) = %q, want %q", tc.endpoint, got, tc.want)
		}
		if len(got) > 15 {
			t.Errorf("HostIfName(%q) = %q is %d bytes, over the kernel's 15", tc.endpoint, got, len(got))
		}
		if err := translate.ValidIfName(got); err != nil {
			t.Errorf("HostIfName(%q): %v", tc.endpoint, err)
		}
	}
	// Endpoints that differ only after the kept prefix share a host name;
	// the prefix must be long enough that Docker's random IDs do not.
	a := translate.HostIfName("cf5dd77156b046fd5a4a664ba1dac766f2ddafcddc731a3ee5491eb6b0fc35a2")
	b := translate.HostIfName("cf5dd77156c046fd5a4a664ba1dac766f2ddafcddc731a3ee5491eb6b0fc35a2")
	if a == b {
		t.Errorf("endpoints differing in the 11th character share host name %q", a)
	}
}

func TestValidIfName(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr string
	}{
		{"eth0", ""},
		{"br-12c573030c43", ""},
		{"123456789012345", ""},
		{"1234567890123456", `"1234567890123456" is not a valid interface name (1 to 15 characters)`},
		{"", `"" is not a valid interface name (1 to 15 characters)`},
		{".", `"." is not a valid interface name (1 to 15 characters)`},
		{"..", `".." is not a valid interface name (1 to 15 characters)`},
		{"a/b", `"a/b" is not a valid interface name (no '/', ':' or spaces)`},
		{"br:0", `"br:0" is not a valid interface name (no '/', ':' or spaces)`},
		{"my br", `"my br" is not a valid interface name (no '/', ':' or spaces)`},
	} {
		err := translate.ValidIfName(tc.name)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.wantErr {
			t.Errorf("ValidIfName(%q) = %q, want %q", tc.name, got, tc.wantErr)
		}
	}
}

func TestShortID(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"12c573030c43d3b399d3ed66a7d5afc2a1f09a5ad9c59ce73763dbc42ab0dec6", "12c573030c43"},
		{"12c573030c43", "12c573030c43"},
		{"abc", "abc"},
	} {
		if got := translate.ShortID(tc.id); got != tc.want {
			t.Errorf("ShortID(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
}

// TestMoveJoinResponseRouteWithoutGWUsesFamilyGateway: in a CNI result a
// route without gw goes through the gateway of the interface's address of
// the same family (containernetworking/plugins pkg/ipam ConfigureIface, which
// the chain itself used in the scratch netns); only without such a gateway
// is it on-link. The Join response must give libnetwork the same route.
func TestMoveJoinResponseRouteWithoutGWUsesFamilyGateway(t *testing.T) {
	var res current.Result
	if err := json.Unmarshal([]byte(`{"cniVersion": "1.0.0",
		"interfaces": [{"name": "eth0", "sandbox": "/run/scratch"}],
		"ips": [{"interface": 0, "address": "10.99.0.2/24", "gateway": "10.99.0.1"}],
		"routes": [{"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16"}, {"dst": "fd00:78::/48"}]}`), &res); err != nil {
		t.Fatal(err)
	}
	jr, err := translate.MoveJoinResponse(&res, "eth0", "dcniabc", false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(jr.StaticRoutes)
	want := `[{"Destination":"192.168.0.0/16","RouteType":0,"NextHop":"10.99.0.1"},{"Destination":"fd00:78::/48","RouteType":1}]`
	if string(got) != want {
		t.Errorf("StaticRoutes = %s, want %s", got, want)
	}
}
