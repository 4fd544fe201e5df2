package node

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// These need no root: the pure parts.

func TestNewNode(t *testing.T) {
	p := netip.MustParsePrefix
	n, err := newNode("e2en2", p("10.231.240.0/30"), p("10.231.242.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	if n.HostIP.String() != "10.231.240.1" || n.NodeIP.String() != "10.231.240.2" ||
		n.HostIf != "e2en2h" || n.NodeIf != "e2en2n" || n.NetNS != NetNSDir+"/e2en2" {
		t.Errorf("node: %+v", n)
	}
	for _, c := range []struct {
		name      string
		link, pod netip.Prefix
		want      string
	}{
		{"eth9", p("10.231.240.0/30"), p("10.231.242.0/24"), "must start with"},
		{"e2en-much-too-long", p("10.231.240.0/30"), p("10.231.242.0/24"), "must start with"},
		{"e2en2", p("10.231.240.0/31"), p("10.231.242.0/24"), "link"},
		{"e2en2", p("192.168.0.0/30"), p("10.231.242.0/24"), "link"},
		{"e2en2", p("10.231.240.0/30"), p("10.0.0.0/8"), "pod subnet"},
		{"e2en2", p("10.231.240.0/30"), p("10.231.240.0/24"), "pod subnet"},
		{"e2efl", p("10.251.0.0/30"), netip.Prefix{}, "must start with"},
		{"e2efl2", p("10.252.0.0/30"), netip.Prefix{}, "link"},
		{"e2efl2", p("10.251.0.0/30"), p("10.252.0.0/24"), "pod subnet"},
	} {
		if _, err := newNode(c.name, c.link, c.pod); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("newNode(%s, %s, %s): %v, want an error about %q", c.name, c.link, c.pod, err, c.want)
		}
	}
}

// An overlay node (flannel's tests): its own names and ranges, no pod
// CIDR, so no pod route and FORWARD rules for its link only.
func TestNewOverlayNode(t *testing.T) {
	n, err := newNode("e2efl2", netip.MustParsePrefix("10.251.0.0/30"), netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if n.HostIP.String() != "10.251.0.1" || n.NodeIP.String() != "10.251.0.2" || n.PodSubnet.IsValid() || n.HostIf != "e2efl2h" {
		t.Errorf("node: %+v", n)
	}
	var got []string
	for _, r := range n.rules() {
		got = append(got, strings.Join(r, " "))
	}
	c := `-m comment --comment docker-cni test/node e2efl2 -j ACCEPT`
	if want := []string{"-o e2efl2h -d 10.251.0.0/30 " + c, "-i e2efl2h -s 10.251.0.0/30 " + c}; !slices.Equal(got, want) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := n.nsenterArgs([]string{"ip", "link"}); !slices.Equal(got, []string{"--net=" + NetNSDir + "/e2efl2", "--", "ip", "link"}) {
		t.Errorf("nsenter args %q", got)
	}
	n.MountNS = mountNSPath(n.Name)
	if got := n.nsenterArgs([]string{"ip"}); !slices.Equal(got, []string{"--net=" + NetNSDir + "/e2efl2", "--mount=" + MountNSDir + "/e2efl2", "--", "ip"}) {
		t.Errorf("nsenter args with a mount namespace %q", got)
	}
}

func TestRules(t *testing.T) {
	n, err := newNode("e2en3", netip.MustParsePrefix("10.231.240.4/30"), netip.MustParsePrefix("10.231.243.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range n.rules() {
		got = append(got, strings.Join(r, " "))
	}
	c := `-m comment --comment docker-cni test/node e2en3 -j ACCEPT`
	want := []string{
		"-o e2en3h -d 10.231.243.0/24 " + c, "-i e2en3h -s 10.231.243.0/24 " + c,
		"-o e2en3h -d 10.231.240.4/30 " + c, "-i e2en3h -s 10.231.240.4/30 " + c,
	}
	if !slices.Equal(got, want) {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestForwardPolicy(t *testing.T) {
	if got := forwardPolicy("-P FORWARD DROP\n-A FORWARD -j DOCKER-USER\n"); got != "DROP" {
		t.Errorf("policy %q, want DROP", got)
	}
	if got := forwardPolicy("iptables: No chain/target/match by that name.\n"); got != "" {
		t.Errorf("policy %q, want none", got)
	}
}

func TestPeerAddrs(t *testing.T) {
	out := "ESTAB 0 0 10.231.242.2:5000 10.231.241.2:40000\n" +
		"ESTAB 0 0 [::ffff:10.231.242.2]:5000 [::ffff:10.231.241.3]:40001\n"
	got := PeerAddrs(out)
	want := []netip.Addr{netip.MustParseAddr("10.231.241.2"), netip.MustParseAddr("10.231.241.3")}
	if !slices.Equal(got, want) {
		t.Errorf("peers %v, want %v", got, want)
	}
}

func TestMentionsRange(t *testing.T) {
	for s, want := range map[string]bool{
		`-A FORWARD -d 10.231.242.0/24 -j ACCEPT`:    true,
		`-A CNI-X -s 10.231.241.7/32 -j ACCEPT`:      true,
		`{Ifindex: 5 Dst: 10.231.243.0/24 Gw: <nil>`: true,
		`{Ifindex: 2 Dst: 0.0.0.0/0 Gw: 10.0.0.1}`:   false,
		`-A FORWARD -d 10.231.244.0/24 -j ACCEPT`:    false,
	} {
		if got := mentionsRange(s); got != want {
			t.Errorf("mentionsRange(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestBridgeConflist(t *testing.T) {
	b, err := BridgeConflist(BridgeConf{Network: "e2en2", Bridge: "e2en2br0",
		Subnet: netip.MustParsePrefix("10.231.242.0/24"), DataDir: "/tmp/ipam", Portmap: true})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name    string
		Plugins []struct {
			Type, Bridge      string
			IsGateway, IPMasq bool
			IPAM              struct {
				Ranges  [][]map[string]string
				Routes  []map[string]string
				DataDir string
			}
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Plugins) != 2 || got.Plugins[1].Type != "portmap" {
		t.Fatalf("plugins: %s", b)
	}
	br := got.Plugins[0]
	if got.Name != "e2en2" || br.Type != "bridge" || br.Bridge != "e2en2br0" || !br.IsGateway || br.IPMasq ||
		br.IPAM.Ranges[0][0]["subnet"] != "10.231.242.0/24" || br.IPAM.Routes[0]["dst"] != "0.0.0.0/0" || br.IPAM.DataDir != "/tmp/ipam" {
		t.Errorf("conflist: %s", b)
	}
	if _, err := BridgeConflist(BridgeConf{Network: "x"}); err == nil {
		t.Error("a conflist without bridge, subnet and data dir: no error")
	}
}
