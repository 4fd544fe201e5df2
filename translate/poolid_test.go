package translate_test

import (
	"net/netip"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

func TestParsePoolID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want translate.PoolID
		ok   bool
	}{
		{"k8s-pod-network/10.244.1.0/24/1a2b3c4d", translate.PoolID{CNINetwork: "k8s-pod-network", Subnet: netip.MustParsePrefix("10.244.1.0/24")}, true},
		{"cbr0/fd00:1::/64/00ff00ff", translate.PoolID{CNINetwork: "cbr0", Subnet: netip.MustParsePrefix("fd00:1::/64")}, true},
		{"docker-cni-10.99.0.0-24/1a2b3c4d", translate.PoolID{CNINetwork: "docker-cni-10.99.0.0-24", Subnet: netip.MustParsePrefix("10.99.0.0/24"), Generated: true}, true},
		{"docker-cni-fd00-99---64/1a2b3c4d", translate.PoolID{CNINetwork: "docker-cni-fd00-99---64", Subnet: netip.MustParsePrefix("fd00:99::/64"), Generated: true}, true},
		{"docker-cni-10.99.0.5-24/1a2b3c4d", translate.PoolID{}, false}, // not masked: not a name docker-cni makes
		{"net/10.1.0.1/24/x", translate.PoolID{}, false},
		{"cniprobe/10.99.0.0/24", translate.PoolID{}, false},
		{"", translate.PoolID{}, false},
		{"/10.0.0.0/8/x", translate.PoolID{}, false},
		{"other/nonce", translate.PoolID{}, false},
	} {
		got, ok := translate.ParsePoolID(c.id)
		if ok != c.ok || got != c.want {
			t.Errorf("ParsePoolID(%q) = %+v, %v; want %+v, %v", c.id, got, ok, c.want, c.ok)
		}
	}
	// Every generated name reads back.
	for _, s := range []string{"10.0.0.0/8", "10.234.7.0/24", "fd00::/8", "2001:db8:1:2::/64", "::/0", "0.0.0.0/0"} {
		p := netip.MustParsePrefix(s)
		got, ok := translate.ParsePoolID(translate.GeneratedName(p) + "/abcd")
		if !ok || got.Subnet != p {
			t.Errorf("the generated pool of %s reads back as %+v, %v", s, got, ok)
		}
	}
}
