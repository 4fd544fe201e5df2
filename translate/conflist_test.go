package translate_test

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/docker-cni/docker-cni/translate"
)

// boundRequest is the request.json of a bound-* case: a conflist from the
// conf dir (or, to feed ParseList bytes that are not JSON, conflistText)
// and the pool RequestPool asks for.
type boundRequest struct {
	Conflist     json.RawMessage `json:"conflist"`
	ConflistText string          `json:"conflistText"`
	V6           bool            `json:"v6"`
	Want         netip.Prefix    `json:"want"`
	// SubnetEnv is the flannel subnet file of the node, if the list is
	// flannel's.
	SubnetEnv string `json:"subnetEnv"`
}

func (r boundRequest) bytes() []byte {
	if r.ConflistText != "" {
		return []byte(r.ConflistText)
	}
	return r.Conflist
}

// TestBoundPoolFor: the golden records what ParseList reads from the list
// and the pool BoundPoolFor carves out of it, including the IPAM network
// configuration ipamdriver runs host-local with for that pool.
func TestBoundPoolFor(t *testing.T) {
	runGolden(t, "bound", func(t *testing.T, req []byte) (string, []byte) {
		var r boundRequest
		decodeStrict(t, req, &r)
		pl, err := translate.ParseList(r.bytes())
		if err != nil {
			return errorGolden(t, err)
		}
		if r.SubnetEnv != "" {
			env, err := translate.ParseSubnetEnv([]byte(r.SubnetEnv))
			if err == nil {
				err = pl.WithSubnetEnv(env)
			}
			if err != nil {
				return errorGolden(t, err)
			}
		}
		type out struct {
			Name        string           `json:"name"`
			CNIVersion  string           `json:"cniVersion"`
			PluginTypes []string         `json:"pluginTypes"`
			Subst       string           `json:"substitution,omitempty"`
			Subnets     []netip.Prefix   `json:"subnets"`
			Pool        *translate.Pool  `json:"pool,omitempty"`
			IPAMType    string           `json:"ipamType,omitempty"`
			IPAM        map[string]any   `json:"ipam,omitempty"`
			NetConf     *json.RawMessage `json:"netconf,omitempty"`
			Error       string           `json:"error,omitempty"`
		}
		o := out{Name: pl.Name, CNIVersion: pl.CNIVersion, PluginTypes: pl.PluginTypes(), Subst: pl.Substitution(), Subnets: pl.Subnets()}
		bp, err := pl.BoundPoolFor(r.V6, r.Want)
		if err != nil {
			o.Error = err.Error()
			return "want.json", pretty(t, o)
		}
		if bp.Pool.Subnet.Addr().Is6() != r.V6 {
			t.Errorf("asked for v6=%v, got pool %s", r.V6, bp.Pool.Subnet)
		}
		if r.Want.IsValid() && bp.Pool.Subnet != r.Want.Masked() {
			t.Errorf("asked for %s, got pool %s", r.Want, bp.Pool.Subnet)
		}
		if !bp.Pool.Subnet.Contains(bp.Pool.Gateway) {
			t.Errorf("gateway %s is outside pool %s", bp.Pool.Gateway, bp.Pool.Subnet)
		}
		nc, err := pl.IPAMRunConf(bp.IPAM)
		if err != nil {
			t.Fatalf("IPAMNetConf: %v", err)
		}
		if _, err := libcni.ConfFromBytes(nc); err != nil {
			t.Fatalf("libcni rejects the pool's IPAM configuration: %v", err)
		}
		raw := json.RawMessage(nc)
		o.Pool, o.IPAMType, o.IPAM, o.NetConf = &bp.Pool, bp.IPAMType, bp.IPAM, &raw
		return "want.json", pretty(t, o)
	})
}

// TestWithStaticIPAM: request.json is {conflist, addresses}; the golden is
// the rewritten conflist. Independently of the golden, everything but the
// first ipam section must come through unchanged.
func TestWithStaticIPAM(t *testing.T) {
	runGolden(t, "static", func(t *testing.T, req []byte) (string, []byte) {
		var r struct {
			Conflist  json.RawMessage           `json:"conflist"`
			Addresses []translate.StaticAddress `json:"addresses"`
		}
		decodeStrict(t, req, &r)
		pl, err := translate.ParseList(r.Conflist)
		if err != nil {
			t.Fatalf("ParseList: %v", err)
		}
		out, err := pl.WithStaticIPAM(r.Addresses)
		if err != nil {
			return errorGolden(t, err)
		}
		again, err := pl.WithStaticIPAM(r.Addresses)
		if err != nil || string(again) != string(out) {
			t.Errorf("second WithStaticIPAM on the same list differs (the first call changed the list?):\n%s\n%s (err %v)", out, again, err)
		}
		checkOnlyIPAMReplaced(t, r.Conflist, out)
		if _, err := libcni.ConfListFromBytes(out); err != nil {
			t.Fatalf("libcni rejects the rewritten conflist: %v", err)
		}
		return "want.conflist", prettyJSON(t, out)
	})
}

// checkOnlyIPAMReplaced asserts that in and out differ only in the ipam
// section of the first plugin that has one, and that the new section is the
// static plugin keeping the old section's routes.
func checkOnlyIPAMReplaced(t *testing.T, in, out []byte) {
	t.Helper()
	var a, b map[string]any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	for k, v := range a {
		if k != "plugins" && !reflect.DeepEqual(b[k], v) {
			t.Errorf("top-level %q: got %v, want %v unchanged", k, b[k], v)
		}
	}
	if len(b) != len(a) {
		t.Errorf("top-level keys: got %d, want %d", len(b), len(a))
	}
	pa, pb := a["plugins"].([]any), b["plugins"].([]any)
	if len(pa) != len(pb) {
		t.Fatalf("got %d plugins, want %d", len(pb), len(pa))
	}
	replaced := false
	for i := range pa {
		ma, mb := pa[i].(map[string]any), pb[i].(map[string]any)
		oldIPAM, has := ma["ipam"]
		if !has || replaced {
			if !reflect.DeepEqual(ma, mb) {
				t.Errorf("plugin %d changed:\n got %v\nwant %v", i, mb, ma)
			}
			continue
		}
		replaced = true
		for k, v := range ma {
			if k != "ipam" && !reflect.DeepEqual(mb[k], v) {
				t.Errorf("plugin %d key %q: got %v, want %v unchanged", i, k, mb[k], v)
			}
		}
		newIPAM, _ := mb["ipam"].(map[string]any)
		if newIPAM["type"] != "static" {
			t.Errorf("plugin %d ipam type = %v, want static", i, newIPAM["type"])
		}
		if !reflect.DeepEqual(newIPAM["routes"], oldIPAM.(map[string]any)["routes"]) {
			t.Errorf("plugin %d ipam routes = %v, want the old section's %v", i, newIPAM["routes"], oldIPAM.(map[string]any)["routes"])
		}
	}
}

func TestParseListPluginTypesAndSubnets(t *testing.T) {
	pl, err := translate.ParseList([]byte(`{
		"cniVersion": "1.0.0", "name": "k8s-pod-network",
		"plugins": [
			{"type": "tuning"},
			{"type": "bridge", "ipam": {"type": "host-local", "ranges": [
				[{"subnet": "10.1.0.7/24"}, {"subnet": "10.3.0.0/24"}],
				[{"subnet": "fd00:1::/64"}],
				[{"subnet": "not-a-subnet"}]
			]}},
			{"type": "portmap", "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := pl.PluginTypes(), []string{"tuning", "bridge", "portmap"}; !reflect.DeepEqual(got, want) {
		t.Errorf("PluginTypes() = %v, want %v", got, want)
	}
	// Only the first plugin with an ipam section counts; subnets are
	// masked and unparsable ones skipped.
	want := []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/24"),
		netip.MustParsePrefix("10.3.0.0/24"),
		netip.MustParsePrefix("fd00:1::/64"),
	}
	if got := pl.Subnets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Subnets() = %v, want %v", got, want)
	}
}

// TestLegacySubnetWithRanges: host-local reads an old-style single range
// (subnet, rangeStart, ...) and ranges together, the single range first
// (host-local backend/allocator/config.go LoadIPAMConfig). docker-cni must
// see every subnet of such a section: Subnets() keeps generated pools from
// overlapping it, and BoundPoolFor must find a family that only "ranges"
// holds.
func TestLegacySubnetWithRanges(t *testing.T) {
	pl, err := translate.ParseList([]byte(`{"cniVersion": "1.0.0", "name": "mixed", "plugins": [
		{"type": "bridge", "ipam": {"type": "host-local", "subnet": "10.22.0.0/16",
			"ranges": [[{"subnet": "fd00:22::/64"}], [{"subnet": "10.23.0.0/16"}]]}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.22.0.0/16"),
		netip.MustParsePrefix("fd00:22::/64"),
		netip.MustParsePrefix("10.23.0.0/16"),
	}
	if got := pl.Subnets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Subnets() = %v, want %v", got, want)
	}
	bp, err := pl.BoundPoolFor(true, netip.Prefix{})
	if err != nil {
		t.Fatalf("BoundPoolFor(v6): %v", err)
	}
	if bp.Pool.Subnet != netip.MustParsePrefix("fd00:22::/64") {
		t.Errorf("BoundPoolFor(v6) = %s, want fd00:22::/64", bp.Pool.Subnet)
	}
}
