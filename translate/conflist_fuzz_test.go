package translate_test

import (
	"encoding/json"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/docker-cni/docker-cni/translate"
)

// FuzzParseList feeds arbitrary conflist bytes (and, for flannel's, a
// subnet file) through ParseList and every method the drivers call on a
// parsed list, asking for a pool of a fuzzed family and subnet. Nothing may
// panic, and what the methods return must be usable:
//   - Subnets, BoundPoolFor and BindingPools give masked subnets, of the
//     family asked, the one asked for when one was, each with its gateway
//     inside it (Docker refuses a pool whose gateway is not);
//   - WithStaticIPAM gives a list that re-parses as the same chain with
//     exactly the given addresses in the static section, that libcni reads
//     when it read the original, and leaves the parsed list as it was;
//   - WithoutDefaultRoutes gives a list that re-parses as the same chain
//     and has no default route of the dropped families;
//   - PortMapPlugins gives one runnable configuration per plugin with the
//     portMappings capability, carrying the mappings asked for.
func FuzzParseList(f *testing.F) {
	envs := seedSubnetEnvs(f)
	for i, c := range seedConflists(f) {
		f.Add(c, false, "", envs[i%len(envs)])
		f.Add(c, true, "", "")
	}
	for _, r := range goldenRequests[struct {
		Conflist     json.RawMessage `json:"conflist"`
		ConflistText string          `json:"conflistText"`
		V6           bool            `json:"v6"`
		Want         string          `json:"want"`
		SubnetEnv    string          `json:"subnetEnv"`
	}](f, "bound") {
		c := []byte(r.Conflist)
		if r.ConflistText != "" {
			c = []byte(r.ConflistText)
		}
		f.Add(c, r.V6, r.Want, r.SubnetEnv)
	}
	prev := json.RawMessage(`{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/c1"}],"ips":[{"address":"10.88.0.2/24","gateway":"10.88.0.1","interface":0}]}`)
	mappings := []translate.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}, {HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "127.0.0.1"}}

	f.Fuzz(func(t *testing.T, conflist []byte, v6 bool, want, subnetEnv string) {
		pl, err := translate.ParseList(conflist)
		if err != nil {
			return
		}
		if pl.Name == "" || len(pl.PluginTypes()) == 0 {
			t.Fatalf("ParseList accepted a list without name or plugins: %+v", pl)
		}
		if env, err := translate.ParseSubnetEnv([]byte(subnetEnv)); err == nil {
			// Fails only for a flannel list whose own ipam section is not
			// an object; the methods below then meet the list as it is.
			_ = pl.WithSubnetEnv(env)
		}
		for _, s := range pl.Subnets() {
			if !s.IsValid() || s != s.Masked() {
				t.Fatalf("Subnets() holds %s, not a masked subnet", s)
			}
		}
		pl.HasDefaultRoute(v6)
		pl.FlannelSubnetFile()

		wantP, _ := netip.ParsePrefix(want)
		if bp, err := pl.BoundPoolFor(v6, wantP); err == nil {
			checkPool(t, "BoundPoolFor", bp.Pool, v6)
			if wantP.IsValid() && bp.Pool.Subnet != wantP.Masked() {
				t.Fatalf("BoundPoolFor(%v, %s) = %s, not the subnet asked for", v6, wantP, bp.Pool.Subnet)
			}
			if _, err := pl.IPAMRunConf(bp.IPAM); err != nil {
				t.Fatalf("IPAMNetConf of the pool's ipam section: %v", err)
			}
		}
		var given []netip.Prefix
		if wantP.IsValid() {
			given = append(given, wantP)
		}
		if pools, err := translate.BindingPools(pl, given); err == nil {
			if len(pools) == 0 || len(pools) > 2 || (len(pools) == 2 && (pools[0].Subnet.Addr().Is6() || !pools[1].Subnet.Addr().Is6())) {
				t.Fatalf("BindingPools = %v, want an IPv4 pool, an IPv6 pool or one of each in that order", pools)
			}
			for _, p := range pools {
				checkPool(t, "BindingPools", p, p.Subnet.Addr().Is6())
			}
		}

		var addrs []translate.StaticAddress
		if wantP.IsValid() {
			addrs = append(addrs, translate.StaticAddress{Address: wantP, Gateway: translate.FirstHost(wantP)})
		}
		checkWithStaticIPAM(t, pl, conflist, addrs)
		checkWithoutDefaultRoutes(t, pl, conflist, v6)
		checkPortMapPlugins(t, pl, conflist, prev, mappings)
	})
}

// checkPool: a pool Docker is given is a masked subnet of the family with
// its gateway in it.
func checkPool(t *testing.T, what string, p translate.Pool, v6 bool) {
	t.Helper()
	if !p.Subnet.IsValid() || p.Subnet != p.Subnet.Masked() || p.Subnet.Addr().Is6() != v6 {
		t.Fatalf("%s: pool %s is not a masked %s subnet", what, p.Subnet, familyOf(v6))
	}
	if !p.Subnet.Contains(p.Gateway) {
		t.Fatalf("%s: pool %s has gateway %s outside it", what, p.Subnet, p.Gateway)
	}
}

func familyOf(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

func checkWithStaticIPAM(t *testing.T, pl *translate.ParsedList, in []byte, addrs []translate.StaticAddress) {
	t.Helper()
	out, err := pl.WithStaticIPAM(addrs)
	if err != nil {
		return
	}
	again := sameChain(t, "WithStaticIPAM", pl, out)
	static, _ := ipamSection(t, out)
	if static["type"] != "static" {
		t.Fatalf("WithStaticIPAM: the ipam section is %v, want the static plugin", static)
	}
	if got, want := staticAddrs(t, static), addrs; !slices.Equal(got, want) {
		t.Fatalf("WithStaticIPAM(%v): static section holds %v", want, got)
	}
	if again.HasCapability("portMappings") != pl.HasCapability("portMappings") || again.HasCapability("mac") != pl.HasCapability("mac") {
		t.Fatalf("WithStaticIPAM changed the chain's capabilities:\n%s", out)
	}
	if _, err := libcni.ConfListFromBytes(in); err == nil {
		if _, err := libcni.ConfListFromBytes(out); err != nil {
			t.Fatalf("libcni read the list but not its WithStaticIPAM rewrite: %v\n%s", err, out)
		}
	}
	if second, err := pl.WithStaticIPAM(addrs); err != nil || string(second) != string(out) {
		t.Fatalf("a second WithStaticIPAM differs (the first changed the list?):\n%s\n%s (%v)", out, second, err)
	}
}

func checkWithoutDefaultRoutes(t *testing.T, pl *translate.ParsedList, in []byte, v6 bool) {
	t.Helper()
	out, err := translate.WithoutDefaultRoutes(in, true, v6)
	if err != nil {
		return
	}
	again := sameChain(t, "WithoutDefaultRoutes", pl, out)
	if again.HasDefaultRoute(false) || (v6 && again.HasDefaultRoute(true)) {
		t.Fatalf("WithoutDefaultRoutes(v4, v6=%v) left a default route:\n%s", v6, out)
	}
}

func checkPortMapPlugins(t *testing.T, pl *translate.ParsedList, in []byte, prev json.RawMessage, mappings []translate.PortMapping) {
	t.Helper()
	plugins, err := pl.PortMapPlugins(prev, mappings, false)
	want := countCapability(t, in, "portMappings")
	if (err != nil) != (want == 0) || len(plugins) != want {
		t.Fatalf("PortMapPlugins: %d plugins, error %v; the chain has %d with the portMappings capability", len(plugins), err, want)
	}
	// A chain docker-cni publishes for itself gets portmap when it has none.
	if own, err := pl.PortMapPlugins(prev, mappings, true); err != nil || len(own) != max(want, 1) || (want == 0 && own[0].Type != "portmap") {
		t.Fatalf("PortMapPlugins(own): %d plugins, error %v; the chain has %d", len(own), err, want)
	}
	for _, p := range plugins {
		var conf map[string]any
		if err := json.Unmarshal(p.Conf, &conf); err != nil {
			t.Fatalf("PortMapPlugins: conf is not JSON: %v\n%s", err, p.Conf)
		}
		rc, _ := conf["runtimeConfig"].(map[string]any)
		_, hasCaps := conf["capabilities"]
		if conf["name"] != pl.Name || conf["cniVersion"] != pl.CNIVersion || conf["type"] != p.Type || hasCaps ||
			jsonOf(t, rc["portMappings"]) != jsonOf(t, mappings) || jsonOf(t, conf["prevResult"]) != jsonOf(t, prev) {
			t.Fatalf("PortMapPlugins: conf %s, want name %q, cniVersion %q, type %s, no capabilities, the prevResult and mappings %v", p.Conf, pl.Name, pl.CNIVersion, p.Type, mappings)
		}
	}
}

// jsonOf is the canonical JSON of a value (decoded again, so that
// json.RawMessage and maps compare by content).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic any
	if err := json.Unmarshal(b, &generic); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(generic)
	return string(b)
}

// countCapability counts the plugins of a list declaring a capability.
func countCapability(t *testing.T, list []byte, name string) int {
	t.Helper()
	n := 0
	for _, p := range pluginsOf(t, list) {
		caps, _ := p["capabilities"].(map[string]any)
		if on, _ := caps[name].(bool); on {
			n++
		}
	}
	return n
}

// sameChain re-parses a rewritten list and checks it is the same chain.
func sameChain(t *testing.T, what string, pl *translate.ParsedList, out []byte) *translate.ParsedList {
	t.Helper()
	again, err := translate.ParseList(out)
	if err != nil {
		t.Fatalf("%s output does not re-parse: %v\n%s", what, err, out)
	}
	if again.Name != pl.Name || again.CNIVersion != pl.CNIVersion || !slices.Equal(again.PluginTypes(), pl.PluginTypes()) {
		t.Fatalf("%s turned %s %s %v into %s %s %v", what, pl.Name, pl.CNIVersion, pl.PluginTypes(), again.Name, again.CNIVersion, again.PluginTypes())
	}
	return again
}

// ipamSection is the ipam section of the first plugin of a list that has
// one (the main plugin, after WithStaticIPAM), and that plugin's index.
func ipamSection(t *testing.T, list []byte) (map[string]any, int) {
	t.Helper()
	for i, p := range pluginsOf(t, list) {
		if raw, ok := p["ipam"]; ok {
			m, _ := raw.(map[string]any)
			return m, i
		}
	}
	return nil, -1
}

// pluginsOf decodes the plugins of a list ParseList accepted, by their
// exact key (encoding/json matches struct fields case-insensitively).
func pluginsOf(t *testing.T, list []byte) []map[string]any {
	t.Helper()
	var l map[string]any
	if err := json.Unmarshal(list, &l); err != nil {
		t.Fatalf("list: %v\n%s", err, list)
	}
	raw, _ := l["plugins"].([]any)
	var out []map[string]any
	for _, p := range raw {
		m, _ := p.(map[string]any)
		out = append(out, m)
	}
	return out
}

// staticAddrs reads the addresses of a static ipam section.
func staticAddrs(t *testing.T, static map[string]any) []translate.StaticAddress {
	t.Helper()
	b, err := json.Marshal(static["addresses"])
	if err != nil {
		t.Fatal(err)
	}
	var as []struct {
		Address string `json:"address"`
		Gateway string `json:"gateway"`
	}
	if err := json.Unmarshal(b, &as); err != nil {
		t.Fatalf("static addresses %s: %v", b, err)
	}
	var out []translate.StaticAddress
	for _, a := range as {
		sa := translate.StaticAddress{}
		if sa.Address, err = netip.ParsePrefix(a.Address); err != nil {
			t.Fatalf("static address %q: %v", a.Address, err)
		}
		if a.Gateway != "" {
			if sa.Gateway, err = netip.ParseAddr(a.Gateway); err != nil {
				t.Fatalf("static gateway %q: %v", a.Gateway, err)
			}
		}
		out = append(out, sa)
	}
	return out
}
