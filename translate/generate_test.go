package translate_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/docker-cni/docker-cni/translate"
)

// TestGenerateConflist: request.json is a translate.GenerateParams; the golden
// is the conflist exactly as written to disk, or the error.
func TestGenerateConflist(t *testing.T) {
	runGolden(t, "generate", func(t *testing.T, req []byte) (string, []byte) {
		var p translate.GenerateParams
		decodeStrict(t, req, &p)
		out, err := translate.GenerateConflist(p)
		if err != nil {
			return errorGolden(t, err)
		}
		// Whatever the golden says, the list must load in libcni under
		// the name asked for, and read back through ParseList with the
		// same subnets.
		cl, err := libcni.ConfListFromBytes(out)
		if err != nil {
			t.Fatalf("libcni rejects the generated conflist: %v\n%s", err, out)
		}
		if cl.Name != p.Name {
			t.Errorf("libcni reads name %q, want %q", cl.Name, p.Name)
		}
		pl, err := translate.ParseList(out)
		if err != nil {
			t.Fatalf("ParseList of the generated conflist: %v", err)
		}
		var want []netip.Prefix
		for _, pool := range p.Pools {
			want = append(want, pool.Subnet.Masked())
		}
		if got := pl.Subnets(); !slices.Equal(got, want) {
			t.Errorf("Subnets() of the generated conflist = %v, want %v", got, want)
		}
		return "want.conflist", out
	})
}

// TestGeneratedRangeExcludesNetworkAndBroadcast: host-local allocates every
// address from rangeStart to rangeEnd inclusive except the gateway, so an
// --ip-range that starts at the subnet's first address or ends at its last
// must not hand the network or broadcast address to a container, as
// Docker's own IPAM never does.
func TestGeneratedRangeExcludesNetworkAndBroadcast(t *testing.T) {
	for _, tc := range []struct{ subnet, rng string }{
		{"10.99.0.0/24", "10.99.0.0/25"},
		{"10.99.0.0/24", "10.99.0.128/25"},
	} {
		subnet, rng := netip.MustParsePrefix(tc.subnet), netip.MustParsePrefix(tc.rng)
		out, err := translate.GenerateConflist(translate.GenerateParams{
			Name: "n", BridgeName: "br", Pools: []translate.Pool{{Subnet: subnet, Range: rng, Gateway: translate.FirstHost(subnet)}},
		})
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Plugins []struct {
				IPAM struct {
					Ranges [][]struct{ RangeStart, RangeEnd string }
				}
			}
		}
		if err := json.Unmarshal(out, &list); err != nil {
			t.Fatal(err)
		}
		r := list.Plugins[0].IPAM.Ranges[0][0]
		network, broadcast := translate.PrefixBounds(subnet)
		if r.RangeStart == network.String() || r.RangeEnd == broadcast.String() {
			t.Errorf("subnet %s --ip-range %s: host-local range %s-%s includes the network or broadcast address", subnet, rng, r.RangeStart, r.RangeEnd)
		}
	}
}

// TestHostLocalIPAMNetConf: request.json holds either pools to render as
// ipamdriver does (HostLocalIPAM without routes, wrapped by IPAMNetConf) or
// an ipam section to wrap, and optionally an address to request with
// WithRequestedIP; netconfText feeds WithRequestedIP raw bytes.
func TestHostLocalIPAMNetConf(t *testing.T) {
	runGolden(t, "netconf", func(t *testing.T, req []byte) (string, []byte) {
		var r struct {
			Name        string           `json:"name"`
			CNIVersion  string           `json:"cniVersion"`
			Pools       []translate.Pool `json:"pools"`
			Internal    bool             `json:"internal"`
			DataDir     string           `json:"dataDir"`
			IPAM        json.RawMessage  `json:"ipam"`
			NetconfText string           `json:"netconfText"`
			RequestedIP netip.Prefix     `json:"requestedIP"`
			IPAMType    string           `json:"ipamType"`
		}
		decodeStrict(t, req, &r)
		var conf []byte
		switch {
		case r.NetconfText != "":
			conf = []byte(r.NetconfText)
		case r.Pools != nil:
			c, err := translate.IPAMNetConf(r.Name, r.CNIVersion, translate.HostLocalIPAM(r.Pools, r.Internal, r.DataDir))
			if err != nil {
				return errorGolden(t, err)
			}
			conf = c
		default:
			c, err := translate.IPAMNetConf(r.Name, r.CNIVersion, r.IPAM)
			if err != nil {
				return errorGolden(t, err)
			}
			conf = c
		}
		typ := r.IPAMType
		if typ == "" {
			typ = "host-local"
		}
		out, args, err := translate.WithRequestedIP(conf, typ, r.RequestedIP)
		if err != nil {
			return errorGolden(t, err)
		}
		if args != nil {
			checkArgs(t, args)
			return "want.json", pretty(t, map[string]any{"netconf": json.RawMessage(out), "args": args})
		}
		// The result is what an IPAM plugin is run with: libcni must
		// read it as a single plugin configuration.
		if _, err := libcni.ConfFromBytes(out); err != nil {
			t.Fatalf("libcni rejects the IPAM configuration: %v\n%s", err, out)
		}
		return "want.json", prettyJSON(t, out)
	})
}

// TestFreeSubnet: request.json is {pools, bits, taken}; the golden is the
// subnet picked or the error.
func TestFreeSubnet(t *testing.T) {
	runGolden(t, "freesubnet", func(t *testing.T, req []byte) (string, []byte) {
		var r struct {
			Pools []netip.Prefix `json:"pools"`
			Bits  int            `json:"bits"`
			Taken []netip.Prefix `json:"taken"`
		}
		decodeStrict(t, req, &r)
		got, err := translate.FreeSubnet(r.Pools, r.Bits, r.Taken)
		if err != nil {
			return errorGolden(t, err)
		}
		for _, tk := range r.Taken {
			if tk.Overlaps(got) {
				t.Errorf("FreeSubnet returned %s, which overlaps taken %s", got, tk)
			}
		}
		if got.Bits() != r.Bits {
			t.Errorf("FreeSubnet returned %s, want a /%d", got, r.Bits)
		}
		return "want.json", pretty(t, map[string]string{"subnet": got.String()})
	})
}

func TestPrefixBoundsAndFirstHost(t *testing.T) {
	for _, tc := range []struct {
		prefix            string
		first, last, host string
	}{
		{"10.99.0.0/24", "10.99.0.0", "10.99.0.255", "10.99.0.1"},
		{"10.99.0.77/24", "10.99.0.0", "10.99.0.255", "10.99.0.1"},
		{"172.28.0.0/16", "172.28.0.0", "172.28.255.255", "172.28.0.1"},
		{"172.28.5.0/25", "172.28.5.0", "172.28.5.127", "172.28.5.1"},
		{"172.28.5.128/25", "172.28.5.128", "172.28.5.255", "172.28.5.129"},
		{"10.0.0.0/9", "10.0.0.0", "10.127.255.255", "10.0.0.1"},
		{"192.168.1.4/30", "192.168.1.4", "192.168.1.7", "192.168.1.5"},
		{"192.168.1.4/32", "192.168.1.4", "192.168.1.4", "192.168.1.5"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255", "0.0.0.1"},
		{"fd00:99::/64", "fd00:99::", "fd00:99::ffff:ffff:ffff:ffff", "fd00:99::1"},
		{"2001:db8:1:2::/63", "2001:db8:1:2::", "2001:db8:1:3:ffff:ffff:ffff:ffff", "2001:db8:1:2::1"},
		{"fd00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fc00::1"},
	} {
		p := netip.MustParsePrefix(tc.prefix)
		first, last := translate.PrefixBounds(p)
		if first.String() != tc.first || last.String() != tc.last {
			t.Errorf("PrefixBounds(%s) = %s, %s; want %s, %s", tc.prefix, first, last, tc.first, tc.last)
		}
		if got := translate.FirstHost(p); got.String() != tc.host {
			t.Errorf("FirstHost(%s) = %s, want %s", tc.prefix, got, tc.host)
		}
	}
}

func TestWithRequestedIPInvalidAddrLeavesConfAlone(t *testing.T) {
	in := []byte(`{"name":"n", "ipam": {"type":"host-local"}}`)
	out, args, err := translate.WithRequestedIP(in, "host-local", netip.Prefix{})
	if err != nil || args != nil {
		t.Fatal(err, args)
	}
	if string(out) != string(in) {
		t.Errorf("WithRequestedIP with no address = %s, want the input unchanged %s", out, in)
	}
}

func TestGeneratedNames(t *testing.T) {
	for _, tc := range []struct{ subnet, want string }{
		{"10.99.0.0/24", "docker-cni-10.99.0.0-24"},
		{"10.99.0.9/24", "docker-cni-10.99.0.0-24"},
		{"fd00:99::/64", "docker-cni-fd00-99---64"},
	} {
		if got := translate.GeneratedName(netip.MustParsePrefix(tc.subnet)); got != tc.want {
			t.Errorf("GeneratedName(%s) = %q, want %q", tc.subnet, got, tc.want)
		}
	}
	for _, tc := range []struct{ id, want string }{
		{"12c573030c43d3b399d3ed66a7d5afc2a1f09a5ad9c59ce73763dbc42ab0dec6", "cni-12c573030c"},
		{"abc", "cni-abc"},
	} {
		got := translate.GeneratedBridgeName(tc.id)
		if got != tc.want {
			t.Errorf("GeneratedBridgeName(%q) = %q, want %q", tc.id, got, tc.want)
		}
		if err := translate.ValidIfName(got); err != nil {
			t.Errorf("GeneratedBridgeName(%q) = %q: %v", tc.id, got, err)
		}
	}
}
