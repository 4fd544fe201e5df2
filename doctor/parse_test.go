package doctor

import (
	"strings"
	"testing"
)

func TestIptablesMode(t *testing.T) {
	for out, want := range map[string]string{
		"iptables v1.8.9 (nf_tables)\n": "nf_tables",
		"iptables v1.8.7 (legacy)\n":    "legacy",
		"iptables v1.6.1\n":             "legacy",
		"":                              "",
	} {
		if got := IptablesMode(out); got != want {
			t.Errorf("IptablesMode(%q) = %q, want %q", out, got, want)
		}
	}
}

func TestForwardPolicy(t *testing.T) {
	if got := ForwardPolicy([]string{"-P FORWARD DROP", "-A FORWARD -j DOCKER-USER"}); got != "DROP" {
		t.Errorf("policy %q", got)
	}
	if got := ForwardPolicy([]string{"-A FORWARD -j ACCEPT"}); got != "" {
		t.Errorf("no policy line: %q", got)
	}
}

func TestModuleState(t *testing.T) {
	builtin := "kernel/net/bridge/bridge.ko\nkernel/drivers/net/veth.ko\n"
	dep := "kernel/drivers/net/vxlan/vxlan.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\nkernel/drivers/net/macvlan.ko:\n"
	kconfig := "CONFIG_BRIDGE=y\nCONFIG_MACVLAN=y\nCONFIG_VXLAN=m\n# CONFIG_IPVLAN is not set\n"
	for _, tc := range []struct {
		name                  string
		loaded                bool
		kconfig, builtin, dep string
		want                  string
	}{
		{"veth", true, "", builtin, dep, "loaded"},
		{"bridge", false, kconfig, "", "", "builtin"},
		{"vxlan", false, kconfig, "", "", "available"},
		{"ipvlan", false, kconfig, builtin, dep, "missing"},
		{"bridge", false, "", builtin, dep, "builtin"},
		{"vxlan", false, "", builtin, dep, "available"},
		{"macvlan", false, "", builtin, dep, "available"},
		{"ipvlan", false, "", builtin, dep, "missing"},
		{"ipvlan", false, "", "", "", "unknown"},
	} {
		if got := ModuleState(tc.name, tc.loaded, tc.kconfig, tc.builtin, tc.dep); got != tc.want {
			t.Errorf("ModuleState(%s, kconfig %t, lists %t) = %s, want %s", tc.name, tc.kconfig != "", tc.builtin != "", got, tc.want)
		}
	}
}

func TestListening(t *testing.T) {
	proc := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 24071 /run/docker/plugins/cni.sock
0000000000000000: 00000003 00000000 00000000 0001 03 24072 /run/docker-cni/admin.sock
0000000000000000: 00000002 00000000 00010000 0001 01 24073 @abstract
`
	if !Listening(proc, "/run/docker/plugins/cni.sock") {
		t.Error("the listening plugin socket is not seen")
	}
	if Listening(proc, "/run/docker-cni/admin.sock") || Listening(proc, "/run/nothing.sock") {
		t.Error("a connected or absent socket is taken for a listening one")
	}
}

func TestSpecAddr(t *testing.T) {
	for _, tc := range []struct {
		path, content, want, err string
	}{
		{"/etc/docker/plugins/cni.spec", "unix:///run/docker/plugins/cni.sock\n", "unix:///run/docker/plugins/cni.sock", ""},
		{"/etc/docker/plugins/cni.json", `{"Name": "cni", "Addr": "tcp://127.0.0.1:9999"}`, "tcp://127.0.0.1:9999", ""},
		{"/etc/docker/plugins/cni.spec", "  \n", "", "gives no address"},
		{"/etc/docker/plugins/cni.json", `{"Name": "cni"}`, "", "gives no address"},
		{"/etc/docker/plugins/cni.json", `unix:///x`, "", "decode /etc/docker/plugins/cni.json"},
	} {
		got, err := SpecAddr(tc.path, []byte(tc.content))
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("SpecAddr(%s, %q) = %q, %v; want %q, error with %q", tc.path, tc.content, got, err, tc.want, tc.err)
		}
	}
}
