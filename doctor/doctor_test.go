package doctor

import (
	"strings"
	"testing"
)

// want is what a check must come out as: its status, and text its
// summary, details and fix hold between them.
type want struct {
	status Status
	text   []string
}

func checkOne(t *testing.T, name string, got Check, w want) {
	t.Helper()
	all := strings.Join(append(append([]string{got.Summary}, got.Details...), got.Fix), "\n")
	if got.Status != w.status {
		t.Errorf("%s: status %s, want %s\n%s", name, got.Status, w.status, all)
	}
	for _, s := range w.text {
		if !strings.Contains(all, s) {
			t.Errorf("%s: lacks %q:\n%s", name, s, all)
		}
	}
}

func TestDaemonChecks(t *testing.T) {
	base := DaemonFacts{AdminSocket: "/run/docker-cni/admin.sock", PluginSocket: "/run/docker/plugins/cni.sock", StateDir: "/var/lib/docker-cni"}
	running := base
	running.Running, running.Version, running.Implements = true, "v1", []string{"NetworkDriver", "IpamDriver"}
	notReady := running
	notReady.ReadyErr = "plugin socket does not answer"
	otherPlugin := running
	otherPlugin.Implements = []string{"VolumeDriver"}
	down := base
	down.AdminErr = "nothing answers on /run/docker-cni/admin.sock"
	activated := down
	activated.SocketExists = true
	stale := down
	stale.SocketStale = true
	specOK := running
	specOK.SpecFiles = []SpecFile{{Path: "/etc/docker/plugins/cni.spec", Addr: "unix:///run/docker/plugins/cni.sock"}}
	specElsewhere := down
	specElsewhere.SpecFiles = []SpecFile{{Path: "/etc/docker/plugins/cni.json", Addr: "tcp://127.0.0.1:9999"}, {Path: "/usr/lib/docker/plugins/cni.spec", Err: "cni.spec gives no address"}}
	fresh := down
	fresh.StateMissing, fresh.StateErr = true, "state database does not exist"
	for name, tc := range map[string]struct {
		f    DaemonFacts
		want []want
	}{
		"running":           {running, []want{{OK, []string{"running docker-cni v1, ready"}}, {OK, []string{"NetworkDriver IpamDriver"}}}},
		"not ready":         {notReady, []want{{Fail, []string{"not ready: plugin socket does not answer"}}, {OK, nil}}},
		"other plugin":      {otherPlugin, []want{{OK, nil}, {Fail, []string{"another plugin serves this socket"}}}},
		"down":              {down, []want{{Fail, []string{"no docker-cni daemon answers", "systemctl enable --now docker-cni.socket"}}}},
		"socket activation": {activated, []want{{Warn, []string{"systemd holding it for socket activation", "--admin-socket <run-dir>/admin.sock"}}}},
		"stale socket":      {stale, []want{{Fail, nil}, {Fail, []string{"nothing listens on it", "connection refused", "rm /run/docker/plugins/cni.sock"}}}},
		"spec file ok":      {specOK, []want{{OK, nil}, {OK, nil}, {OK, []string{"gives docker-cni's socket"}}}},
		"spec file elsewhere": {specElsewhere, []want{{Fail, nil}, {Warn, []string{"gives tcp://127.0.0.1:9999, not docker-cni's socket", "make it say unix:///run/docker/plugins/cni.sock"}},
			{Warn, []string{"gives no address"}}}},
		"fresh node": {fresh, []want{{Fail, nil}, {Info, []string{"has not run with this --state-dir"}}}},
	} {
		got := DaemonChecks(tc.f)
		if len(got) != len(tc.want) {
			t.Fatalf("%s: %d checks, want %d: %+v", name, len(got), len(tc.want), got)
		}
		for i := range got {
			checkOne(t, name, got[i], tc.want[i])
		}
	}
}

func TestEngineChecks(t *testing.T) {
	sock := "/run/docker/plugins/cni.sock"
	for name, tc := range map[string]struct {
		f    EngineFacts
		want want
	}{
		"debian 20.10": {EngineFacts{Host: "unix:///var/run/docker.sock", Version: "20.10.24+dfsg1", APIVersion: "1.41", Driver: "cni", DriverSocket: sock, SocketExists: true, Networks: 2},
			want{OK, []string{"Docker 20.10.24+dfsg1 (API 1.41): containers join in move mode", "2 network(s)", `finds driver "cni" at ` + sock, "cni.join=direct needs Docker 28+"}}},
		"current": {EngineFacts{Host: "unix:///run/cur.sock", Version: "2.0.0-beta.24", APIVersion: "1.56", Driver: "cni", DriverSocket: sock, SocketExists: true},
			want{OK, []string{"containers join in handover mode"}}},
		"28.0": {EngineFacts{Version: "28.0.0", APIVersion: "1.48", SocketExists: true}, want{OK, []string{"handover mode"}}},
		"27.5": {EngineFacts{Version: "27.5.1", APIVersion: "1.47", SocketExists: true}, want{OK, []string{"move mode"}}},
		"does not answer": {EngineFacts{Host: "unix:///run/none.sock", Err: "dial unix /run/none.sock: connect: no such file or directory"},
			want{Fail, []string{"does not answer: dial unix", "keeps everything of an engine it cannot ask", "take it out of the daemon's --docker-host"}}},
		"no driver": {EngineFacts{Version: "20.10.24", APIVersion: "1.41", Driver: "cni", DriverSocket: sock},
			want{Fail, []string{`cannot find driver "cni": no ` + sock, "start docker-cni serving --socket " + sock}}},
		"managed plugin": {EngineFacts{Version: "28.1", APIVersion: "1.49", Driver: "cni", DriverSocket: sock, ManagedPlugins: []string{"docker-cni:latest"}},
			want{OK, []string{"managed plugin(s) docker-cni:latest"}}},
	} {
		got := EngineChecks([]EngineFacts{tc.f})
		checkOne(t, name, got[0], tc.want)
	}
	checkOne(t, "none", EngineChecks(nil)[0], want{Fail, []string{"no engine given"}})
}

func TestHostChecks(t *testing.T) {
	good := HostFacts{IPForward: "1", BridgeNF: "1", ForwardPolicy: "DROP", DockerUser: true, IptablesMode: "nf_tables", DockerdModes: []string{"nf_tables"},
		NetNS: true, Modules: map[string]string{"bridge": "loaded", "veth": "loaded", "vxlan": "available", "macvlan": "builtin", "ipvlan": "missing"}}
	find := func(cs []Check, subject string) Check {
		for _, c := range cs {
			if c.Subject == subject {
				return c
			}
		}
		t.Fatalf("no check of %s in %+v", subject, cs)
		return Check{}
	}
	got := HostChecks(good)
	checkOne(t, "netns", find(got, "netns"), want{OK, nil})
	checkOne(t, "ip_forward", find(got, "net.ipv4.ip_forward"), want{OK, nil})
	checkOne(t, "FORWARD", find(got, "FORWARD"), want{OK, []string{"policy DROP (dockerd's) and bridged traffic passes iptables"}})
	checkOne(t, "iptables", find(got, "iptables"), want{OK, []string{"backend nf_tables"}})
	checkOne(t, "links", find(got, "link types"), want{Info, []string{"bridge (loaded)", "macvlan (builtin)", "vxlan (available)", "not ipvlan"}})

	bad := good
	bad.IPForward, bad.DockerUser, bad.IptablesMode, bad.NetNS = "0", false, "legacy", false
	got = HostChecks(bad)
	checkOne(t, "no netns", find(got, "netns"), want{Fail, []string{"no network namespaces"}})
	checkOne(t, "ip_forward 0", find(got, "net.ipv4.ip_forward"), want{Warn, []string{"sysctl -w net.ipv4.ip_forward=1"}})
	checkOne(t, "no DOCKER-USER", find(got, "FORWARD"), want{Warn, []string{"no DOCKER-USER chain"}})
	checkOne(t, "backends", find(got, "iptables"), want{Fail, []string{"iptables uses the legacy backend, dockerd's rules are in nf_tables", "update-alternatives --set iptables /usr/sbin/iptables-nft"}})

	skips := good
	skips.BridgeNF = ""
	checkOne(t, "no br_netfilter", find(HostChecks(skips), "FORWARD"), want{OK, []string{"bridged traffic skips iptables"}})
	none := good
	none.IptablesErr, none.DockerdModes = "not installed", nil
	got = HostChecks(none)
	checkOne(t, "no iptables", find(got, "FORWARD"), want{Info, []string{"not installed"}})
	for _, c := range got {
		if c.Subject == "iptables" {
			t.Errorf("a backend check without dockerd's rules: %+v", c)
		}
	}
}

func TestPluginChecks(t *testing.T) {
	plugin := func(name string) Plugin {
		return Plugin{Name: name, Path: "/usr/lib/cni/" + name, Versions: []string{"0.3.1", "0.4.0", "1.0.0"}}
	}
	all := []Plugin{plugin("bridge"), plugin("static"), plugin("portmap"), plugin("host-local")}
	for name, tc := range map[string]struct {
		f    PluginFacts
		want want
	}{
		"complete": {PluginFacts{Dirs: []BinDir{{Path: "/opt/cni/bin", Err: "does not exist"}, {Path: "/usr/lib/cni"}}, Plugins: all},
			want{OK, []string{"4 plugins", "bridge (/usr/lib/cni/bridge): CNI 0.3.1, 0.4.0, 1.0.0"}}},
		"no portmap": {PluginFacts{Plugins: all[:2]}, want{Warn, []string{"no portmap: docker run -p fails"}}},
		"no bridge":  {PluginFacts{Plugins: all[1:]}, want{Fail, []string{"no bridge: generated networks cannot be created", "containernetworking-plugins"}}},
		"broken static": {PluginFacts{Plugins: []Plugin{plugin("bridge"), {Name: "static", Path: "/x/static", Err: "exit status 1"}, plugin("portmap")}},
			want{Fail, []string{"no static", "static (/x/static): does not answer CNI VERSION: exit status 1"}}},
		"empty": {PluginFacts{Dirs: []BinDir{{Path: "/nowhere"}}}, want{Fail, []string{"no CNI plugin in /nowhere"}}},
	} {
		got := PluginChecks(tc.f)
		checkOne(t, name, got[len(got)-1], tc.want)
	}
	got := PluginChecks(PluginFacts{Dirs: []BinDir{{Path: "/opt/cni/bin", Err: "does not exist"}}, Plugins: all})
	checkOne(t, "missing dir", got[0], want{Info, []string{"not listed: does not exist"}})
}

func TestConflistChecks(t *testing.T) {
	base := ConflistFacts{Path: "/etc/cni/net.d/10-pods.conflist", Name: "k8s-pod-network", CNIVersion: "1.0.0", Plugins: []string{"bridge", "portmap"},
		IPAMType: "host-local", Pools: []string{"10.244.1.0/24 gateway 10.244.1.1"}}
	flannel := base
	flannel.Name, flannel.SubnetFile, flannel.Plugins = "cbr0", "/run/flannel/subnet.env", []string{"flannel", "portmap"}
	calico := base
	calico.IPAMType, calico.NeedsSubnet, calico.BindErr = "calico-ipam", true, "give the IPv4 subnet it allocates from with --subnet"
	unknownIPAM := base
	unknownIPAM.IPAMType, unknownIPAM.NeedsSubnet, unknownIPAM.ChainErr = "e2edoc-ipam", true, `plugin "e2edoc-ipam" not found in /opt/cni/bin:/usr/lib/cni`
	cilium := base
	cilium.BindErr = `its main plugin "cilium-cni" has no ipam section: it allocates addresses itself`
	missing := base
	missing.ChainErr = `plugin "e2edoc-nosuch" not found in /usr/lib/cni`
	missingBound := missing
	missingBound.BoundBy = []string{"a1b2c3d4e5f6"}
	invalid := ConflistFacts{Path: "/etc/cni/net.d/99-bad.conf", LoadErr: "unexpected end of JSON input"}
	shadowed := base
	shadowed.Path, shadowed.ShadowedBy = "/etc/cni/net.d/20-pods.conflist", "/etc/cni/net.d/10-pods.conflist"
	for name, tc := range map[string]struct {
		f    ConflistFacts
		want want
	}{
		"host-local": {base, want{OK, []string{`"k8s-pod-network" is bindable: host-local over 10.244.1.0/24 gateway 10.244.1.1`,
			"docker-cni network create k8s-pod-network --bind k8s-pod-network", "CNI 1.0.0, plugins bridge, portmap"}}},
		"flannel":               {flannel, want{OK, []string{"host-local (flannel's delegate) on the lease in /run/flannel/subnet.env", "--bind cbr0"}}},
		"calico-ipam":           {calico, want{Info, []string{"bindable with --subnet", "--bind k8s-pod-network --subnet <the subnet calico-ipam allocates from>"}}},
		"unknown ipam":          {unknownIPAM, want{Warn, []string{"cannot be bound", `plugin "e2edoc-ipam" not found`}}},
		"cilium":                {cilium, want{Warn, []string{`"k8s-pod-network" cannot be bound: its main plugin "cilium-cni" has no ipam section`}}},
		"missing plugin":        {missing, want{Warn, []string{`plugin "e2edoc-nosuch" not found`}}},
		"missing plugin, bound": {missingBound, want{Fail, []string{`plugin "e2edoc-nosuch" not found`, "bound by docker-cni network(s) a1b2c3d4e5f6"}}},
		"invalid":               {invalid, want{Warn, []string{"unexpected end of JSON input"}}},
		"shadowed":              {shadowed, want{Info, []string{"/etc/cni/net.d/10-pods.conflist, which comes first"}}},
	} {
		checkOne(t, name, ConflistChecks("/etc/cni/net.d", []ConflistFacts{tc.f}, "", nil)[0], tc.want)
	}
	ipvlan := base
	ipvlan.Plugins = []string{"ipvlan"}
	modules := map[string]string{"ipvlan": "missing", "macvlan": "builtin"}
	checkOne(t, "no ipvlan driver", ConflistChecks("/etc/cni/net.d", []ConflistFacts{ipvlan}, "", modules)[0], want{Warn, []string{"this kernel has no ipvlan driver"}})
	ipvlan.Plugins = []string{"macvlan"}
	checkOne(t, "macvlan driver", ConflistChecks("/etc/cni/net.d", []ConflistFacts{ipvlan}, "", modules)[0], want{OK, nil})
	checkOne(t, "empty dir", ConflistChecks("/etc/cni/net.d", nil, "", nil)[0], want{Info, []string{"only generated networks"}})
	checkOne(t, "unreadable dir", ConflistChecks("/etc/cni/net.d", nil, "read CNI conf dir: permission denied", nil)[0], want{Warn, []string{"permission denied"}})
}

func TestNetworkChecks(t *testing.T) {
	drop := HostFacts{ForwardPolicy: "DROP", BridgeNF: "1"}
	bound := NetworkFacts{ID: "a1b2c3d4e5f60000", CNINetwork: "k8s-pod-network", Bound: true, ConfFile: "/etc/cni/net.d/10-pods.conflist",
		Engine: "unix:///var/run/docker.sock", EnginesAnswered: true, Endpoints: 2, Joined: 2, Subnets: []string{"10.244.1.0/24"}, Rules: 2}
	noRules := bound
	noRules.Rules = 0
	withFirewall := noRules
	withFirewall.HasFirewall = true
	gone := bound
	gone.MissingRules = []string{"-s 10.244.1.0/24 -j ACCEPT"}
	stale := bound
	stale.Engine = ""
	unknown := stale
	unknown.EnginesAnswered = false
	leftover := bound
	leftover.Leftovers = []string{"e2e2e2e2e2e2: cni DEL: plugin gone"}
	confGone := bound
	confGone.ConfErr, confGone.ConfChanged = `CNI network "k8s-pod-network" not found`, false
	changed := bound
	changed.ConfChanged = true
	for name, tc := range map[string]struct {
		f    NetworkFacts
		h    HostFacts
		want want
	}{
		"healthy":          {bound, drop, want{OK, []string{`CNI network "k8s-pod-network" (bound to /etc/cni/net.d/10-pods.conflist): 2 endpoint(s), 2 joined`, "engine unix:///var/run/docker.sock"}}},
		"no user rules":    {noRules, drop, want{Fail, []string{"FORWARD drops its traffic", "--docker-user-rules", "iptables -I DOCKER-USER -s 10.244.1.0/24 -j ACCEPT && iptables -I DOCKER-USER -d 10.244.1.0/24 -j ACCEPT"}}},
		"no rules, ACCEPT": {noRules, HostFacts{ForwardPolicy: "ACCEPT", BridgeNF: "1"}, want{OK, nil}},
		"firewall plugin":  {withFirewall, drop, want{OK, nil}},
		"rules gone":       {gone, drop, want{Fail, []string{"gone from iptables", "docker-cni gc"}}},
		"no engine has it": {stale, drop, want{Warn, []string{"no engine of --docker-host has it"}}},
		"engine unknown":   {unknown, drop, want{OK, nil}},
		"leftover":         {leftover, drop, want{Warn, []string{"left over, teardown retried: e2e2e2e2e2e2: cni DEL: plugin gone"}}},
		"conflist gone":    {confGone, drop, want{Warn, []string{"joins use the copy taken at create"}}},
		"conflist changed": {changed, drop, want{Info, []string{"new joins use it"}}},
	} {
		checkOne(t, name, NetworkChecks([]NetworkFacts{tc.f}, tc.h)[0], tc.want)
	}
}

func TestReport(t *testing.T) {
	r := NewReport([]Check{{Area: AreaDaemon, Status: OK}}, []Check{{Area: AreaEngine, Subject: "unix:///x", Status: Fail}, {Area: AreaConflist, Status: Warn}})
	if r.Failed != 1 || r.Warnings != 1 || r.Err() == nil || !strings.Contains(r.Err().Error(), "1 check(s) failed: engine unix:///x") {
		t.Errorf("report: %+v, %v", r, r.Err())
	}
	if err := NewReport([]Check{{Status: Warn}}).Err(); err != nil {
		t.Errorf("warnings only: %v", err)
	}
}
