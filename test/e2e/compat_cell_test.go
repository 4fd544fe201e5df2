package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/compat"
	"github.com/docker-cni/docker-cni/test/cri"
)

// Each cell has one /24 of 10.231.130.0/24 to 10.231.149.0/24 (in turn), one
// of 10.231.150.0/24 to 10.231.169.0/24 for a generated network, and one
// host port from compatPortBase.
const (
	compatSubnets  = 20
	compatPortBase = 18600
)

// attachment is one container or pod of a cell and the conflist (and, for
// containers, the Docker network) it is on.
type attachment struct {
	topo    compat.Topology
	network string     // Docker network ("" for the pod)
	addr    netip.Addr // the address asked with --ip (third container)
}

// cellRun is one cell being run; its cleanups run in reverse order.
type cellRun struct {
	t        *testing.T
	ctx      context.Context
	h        *compatHarness
	c        compat.Cell
	e        *compatEngine
	d        *daemon
	idx      int
	subnet   netip.Prefix
	gw       netip.Addr
	port     int
	att      [4]*attachment // c1, c2, c3, pod (the same one four times when shared)
	notes    []string
	partial  []string
	logMark  int64    // the daemon log's size when the cell began
	podGap   string   // why the CRI runtime cannot run the cell's pod
	scratch  []string // the daemon's scratch namespaces when the cell began
	cleanups []func()
}

func (r *cellRun) cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// runCell runs the scenario on cell c and says how it went.
func (h *compatHarness) runCell(t *testing.T, idx int, c compat.Cell) compat.Result {
	r := &cellRun{t: t, ctx: t.Context(), h: h, c: c, idx: idx, port: compatPortBase + idx}
	r.subnet = netip.MustParsePrefix(fmt.Sprintf("10.231.%d.0/24", 130+idx%compatSubnets))
	r.gw = r.subnet.Addr().Next()
	err := r.scenario()
	if err != nil && r.d != nil {
		if e := r.daemonError(); e != "" {
			r.notes = append(r.notes, "docker-cni logged: "+e)
		}
	}
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	if r.d != nil {
		r.sweepScratch(r.scratch)
	}
	st, reason := outcome(err, r.partial)
	if st != compat.Fail {
		r.notes = slices.DeleteFunc(r.notes, func(n string) bool { return strings.HasPrefix(n, "docker-cni logged: ") })
	}
	return compat.Result{Cell: c, Status: st, Reason: reason, Notes: r.notes}
}

// daemonError is the first error docker-cni logged since the cell's daemon
// log mark (the root cause a docker command's message may not carry).
func (r *cellRun) daemonError() string {
	b, err := os.ReadFile(r.d.log.Name())
	if err != nil || int64(len(b)) < r.logMark {
		return ""
	}
	for _, line := range strings.Split(string(b[r.logMark:]), "\n") {
		if !strings.Contains(line, "level=ERROR") {
			continue
		}
		if _, e, ok := strings.Cut(line, ` err=`); ok {
			if q, err := strconv.QuotedPrefix(e); err == nil {
				e, _ = strconv.Unquote(q)
			} else {
				e, _, _ = strings.Cut(e, " ")
			}
			return e
		}
	}
	return ""
}

func (r *cellRun) scenario() error {
	r.e = r.h.engine(r.c.Engine)
	if r.e.err != nil {
		return cellSkip("%v", r.e.err)
	}
	var err error
	// host-device cells get a daemon of their own: a device lost by a failed
	// DEL leaves an endpoint retried for as long as its daemon runs.
	if r.d, err = r.h.daemon(r.e, r.c.Plugins, r.c.Main == compat.MainHostDevice); err != nil {
		return err
	}
	if fi, err := r.d.log.Stat(); err == nil {
		r.logMark = fi.Size()
	}
	r.scratch = scratchNames(r.d)
	if r.c.Client == compat.ClientCompose {
		return r.compose()
	}
	if err := r.probeKernel(); err != nil {
		return err
	}
	refusal, err := r.versionGap()
	if err != nil {
		return err
	}
	if err := r.topology(); err != nil {
		return fmt.Errorf("set up links: %w", err)
	}
	if refusal != "" {
		return r.expectRefused(refusal)
	}
	if err := r.networks(); err != nil {
		return err
	}
	ip1, ip2, err := r.twoContainers()
	if err != nil {
		return err
	}
	if err := r.published("compat-ok"); err != nil {
		return err
	}
	ip3, err := r.staticAddress(ip1)
	if err != nil {
		return err
	}
	if ip3, err = r.disconnectConnect(ip3, ip1); err != nil {
		return err
	}
	if err := r.chainedEffect(ip1); err != nil {
		return err
	}
	if err := r.pod(ip2, []netip.Addr{ip1, ip2, ip3}); err != nil {
		return err
	}
	if err := r.verbs(); err != nil {
		return err
	}
	if err := r.removeAll(); err != nil {
		return err
	}
	if r.podGap != "" {
		return cellSkip("%s", r.podGap)
	}
	return nil
}

// sweepScratch removes the scratch namespaces the daemon made during the
// cell and left (a DEL that failed keeps its namespace for the retry; the
// cell's links are gone by now, so no retry can succeed).
func (r *cellRun) sweepScratch(before []string) {
	for _, name := range scratchNames(r.d) {
		if name != "ipam" && !slices.Contains(before, name) {
			p := filepath.Join(r.d.runDir, "netns", name)
			syscall.Unmount(p, syscall.MNT_DETACH)
			os.Remove(p)
		}
	}
}

// scratchNames lists the daemon's scratch namespaces.
func scratchNames(d *daemon) []string {
	ents, _ := os.ReadDir(filepath.Join(d.runDir, "netns"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// netns is the engine's namespace (where the cell's links live).
func (r *cellRun) ns(name string, args ...string) (string, error) {
	return inNetns(r.ctx, r.e.netns, name, args...)
}

func (r *cellRun) docker(args ...string) (string, error) {
	out, err := r.e.docker(args...)
	if err != nil {
		return out, fmt.Errorf("docker %s: %s", strings.Join(args[:min(len(args), 2)], " "), compat.Short(out))
	}
	return out, nil
}

// names of the cell's links (at most 15 characters).
func (r *cellRun) link(kind string, k int) string {
	return fmt.Sprintf("cmp%s%d-%d", kind, r.idx%100, k)
}

// probeKernel: the links the main plugin makes must exist in this kernel.
func (r *cellRun) probeKernel() error {
	kind := map[string][]string{
		compat.MainIPvlanL2: {"ipvlan", "mode", "l2"}, compat.MainIPvlanL3: {"ipvlan", "mode", "l3"},
		compat.MainVLAN: {"vlan", "id", "131"}, compat.MainMacvlan: {"macvlan", "mode", "bridge"},
	}[r.c.Main]
	if kind == nil {
		return nil
	}
	par, probe := r.link("pp", 0), r.link("pq", 0)
	if out, err := r.ns("ip", "link", "add", par, "type", "veth", "peer", "name", par+"x"); err != nil {
		return fmt.Errorf("probe: %s", out)
	}
	defer r.ns("ip", "link", "del", par)
	out, err := r.ns("ip", append([]string{"link", "add", "link", par, "name", probe, "type"}, kind...)...)
	if err != nil {
		return cellSkip("this kernel makes no %s links (`ip link add type %s`: %s); the plugin needs them", kind[0], kind[0], compat.Short(out))
	}
	r.ns("ip", "link", "del", probe)
	return nil
}

// versionGap names a plugin of the chain that does not speak the cell's
// version ("" if all do): docker-cni must then refuse the network.
func (r *cellRun) versionGap() (string, error) {
	dir, err := r.h.pluginDir(r.c.Plugins)
	if err != nil {
		return "", err
	}
	for _, p := range append(r.c.Chain(), r.c.IPAM) {
		ok, supported, err := pluginSpeaks(r.ctx, filepath.Join(dir, p), r.c.Version)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("%s of the %s plugin set speaks %s, not %s", p, r.c.Plugins, strings.Join(supported, ", "), r.c.Version), nil
		}
	}
	return "", nil
}

// topology makes the links and writes the conflists: one shared by the
// three containers and the pod, or (static IPAM, host-device) one each.
func (r *cellRun) topology() error {
	base := compat.Topology{Subnet: r.subnet, Gateway: r.gw, Bridge: r.link("br", 0), DataDir: filepath.Join(r.d.dir, "compat-ipam")}
	if r.c.Main == compat.MainBridge {
		r.ns("ip", "link", "del", base.Bridge)
		r.cleanup(func() { r.ns("ip", "link", "del", base.Bridge) })
	}
	switch r.c.Main {
	case compat.MainMacvlan, compat.MainIPvlanL2, compat.MainIPvlanL3, compat.MainVLAN:
		base.Master = r.link("par", 0)
		if err := r.veth(base.Master, base.Master+"p"); err != nil {
			return err
		}
	case compat.MainHostDevice:
		// The devices' peers on a bridge of their own, holding the gateway:
		// a LAN the containers and the pod are on, the host too.
		lan := r.link("lan", 0)
		r.ns("ip", "link", "del", lan)
		r.cleanup(func() { r.ns("ip", "link", "del", lan) })
		for _, args := range [][]string{{"link", "add", lan, "type", "bridge"}, {"addr", "add", netip.PrefixFrom(r.gw, 24).String(), "dev", lan}, {"link", "set", lan, "up"}} {
			if out, err := r.ns("ip", args...); err != nil {
				return fmt.Errorf("ip %s: %s", strings.Join(args, " "), out)
			}
		}
	}
	per := r.c.OneAttachmentPerNetwork()
	for k := range r.att {
		if k > 0 && !per {
			r.att[k] = r.att[0]
			continue
		}
		tp := base
		tp.Name = fmt.Sprintf("cmp-%d-%d", r.idx, k)
		a := &attachment{topo: tp}
		last := r.subnet.Addr().As4()
		last[3] = byte(77)
		a.addr = netip.AddrFrom4(last)
		if per {
			last[3] = byte(11 + k)
			a.topo.Address, a.addr = netip.AddrFrom4(last), netip.AddrFrom4(last)
			last[3] = byte(10*k + 20)
			a.topo.RangeStart = netip.AddrFrom4(last)
			last[3] += 9
			a.topo.RangeEnd = netip.AddrFrom4(last)
			if r.c.IPAM == compat.IPAMHostLocal {
				last[3] -= 2
				a.addr = netip.AddrFrom4(last) // --ip inside the range
			}
		}
		if r.c.Main == compat.MainHostDevice {
			a.topo.Device = r.link("hd", k)
			if err := r.veth(a.topo.Device, a.topo.Device+"p"); err != nil {
				return err
			}
			if out, err := r.ns("ip", "link", "set", a.topo.Device+"p", "master", r.link("lan", 0)); err != nil {
				return fmt.Errorf("enslave %sp: %s", a.topo.Device, out)
			}
		}
		b, err := compat.Conflist(r.c, a.topo)
		if err != nil {
			return err
		}
		p := filepath.Join(r.d.confDir, "50-"+tp.Name+".conflist")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
		r.cleanup(func() { os.Remove(p) })
		r.att[k] = a
	}
	return nil
}

// veth makes a veth pair, both ends up, removed with the cell.
func (r *cellRun) veth(a, b string) error {
	r.ns("ip", "link", "del", a)
	if out, err := r.ns("ip", "link", "add", a, "type", "veth", "peer", "name", b); err != nil {
		return fmt.Errorf("veth %s: %s", a, out)
	}
	// Either end: a device lost in another namespace goes with its peer.
	r.cleanup(func() { r.ns("ip", "link", "del", a); r.ns("ip", "link", "del", b) })
	r.ns("ip", "link", "set", a, "up")
	r.ns("ip", "link", "set", b, "up")
	return nil
}

// createNetwork binds a Docker network to a conflist, as users do.
func (r *cellRun) createNetwork(name, cniNet string) (string, error) {
	out, err := run(r.ctx, r.d.bin, "network", "create", name, "--bind", cniNet, "--driver", strings.TrimSuffix(filepath.Base(r.d.socket), ".sock"),
		"--cni-conf-dir", r.d.confDir, "--docker-host", r.e.host)
	if err != nil {
		r.e.docker("network", "rm", name)
	}
	return out, err
}

// expectRefused: a plugin does not speak the version, so docker-cni must
// refuse the network, naming the plugin.
func (r *cellRun) expectRefused(why string) error {
	name := fmt.Sprintf("cmp-%d-0", r.idx)
	out, err := r.createNetwork(name, r.att[0].topo.Name)
	if err == nil {
		r.e.docker("network", "rm", name)
		return fmt.Errorf("%s, yet docker-cni created the network", why)
	}
	plugin, _, _ := strings.Cut(why, " ")
	if !strings.Contains(out, plugin) {
		return fmt.Errorf("%s; docker-cni refused the network without naming it: %s", why, compat.Short(out))
	}
	return cellSkip("%s: docker-cni refuses the network, naming it", why)
}

func (r *cellRun) networks() error {
	seen := map[*attachment]bool{}
	for k, a := range r.att[:3] {
		if seen[a] {
			continue
		}
		seen[a] = true
		a.network = fmt.Sprintf("cmp-%d-%d", r.idx, k)
		net := a.network
		r.cleanup(func() {
			if ids, _ := r.e.docker("ps", "-aq", "--filter", "network="+net); ids != "" {
				r.e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
			}
			r.e.docker("network", "rm", net)
		})
		if out, err := r.createNetwork(a.network, a.topo.Name); err != nil {
			return fmt.Errorf("docker-cni network create --bind %s: %s", a.topo.Name, compat.Short(out))
		}
	}
	return nil
}

func (r *cellRun) ctr(k int) string { return fmt.Sprintf("cmp-%d-c%d", r.idx, k+1) }

// run starts container k on its network.
func (r *cellRun) run(k int, extra ...string) error {
	name := r.ctr(k)
	r.cleanup(func() { r.e.docker("rm", "-f", name) })
	args := append([]string{"run", "-d", "--name", name, "--network", r.att[k].network}, extra...)
	if k == 0 {
		args = append(args, image, "sh", "-c", "echo compat-ok >/tmp/index.html; exec httpd -f -p 80 -h /tmp")
	} else {
		args = append(args, image, "sleep", "3600")
	}
	_, err := r.docker(args...)
	return err
}

// addr is container k's address as docker inspect shows it, checked
// against the one it has inside.
func (r *cellRun) addr(k int) (netip.Addr, error) {
	out, err := r.docker("inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", r.att[k].network), r.ctr(k))
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(out)
	if err != nil || !r.subnet.Contains(a) {
		return netip.Addr{}, fmt.Errorf("docker inspect: %s has address %q, want one in %s", r.ctr(k), out, r.subnet)
	}
	inside, err := r.docker("exec", r.ctr(k), "ip", "-4", "-o", "addr", "show")
	if err != nil {
		return a, err
	}
	if !strings.Contains(inside, " "+a.String()+"/") {
		return a, fmt.Errorf("docker inspect says %s has %s; inside it has %s", r.ctr(k), a, compat.Short(inside))
	}
	return a, nil
}

func (r *cellRun) ping(k int, to netip.Addr) error {
	var out string
	var err error
	for i := 0; i < 3; i++ { // a fresh macvlan or bridge port may drop the first ARP
		if out, err = r.e.docker("exec", r.ctr(k), "ping", "-c", "1", "-W", "2", to.String()); err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s cannot ping %s: %s", r.ctr(k), to, compat.Short(out))
}

func (r *cellRun) twoContainers() (netip.Addr, netip.Addr, error) {
	var pub []string
	if ok, why := r.c.PortsFromHost(); ok {
		pub = []string{"-p", fmt.Sprintf("%d:80", r.port)}
	} else {
		r.notes = append(r.notes, why)
	}
	if err := r.run(0, pub...); err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	if err := r.run(1); err != nil {
		return netip.Addr{}, netip.Addr{}, err
	}
	ip1, err := r.addr(0)
	if err != nil {
		return ip1, ip1, err
	}
	ip2, err := r.addr(1)
	if err != nil {
		return ip1, ip2, err
	}
	if err := r.ping(0, ip2); err != nil {
		return ip1, ip2, err
	}
	return ip1, ip2, r.ping(1, ip1)
}

// published fetches the first container's page on its published port from
// the engine's host namespace.
func (r *cellRun) published(want string) error {
	if ok, _ := r.c.PortsFromHost(); !ok {
		return nil
	}
	var out string
	var err error
	for i := 0; i < 20; i++ {
		out, err = r.ns("/bin/busybox", "sh", "-c", fmt.Sprintf(`printf 'GET /index.html HTTP/1.0\r\n\r\n' | /bin/busybox nc -w 3 127.0.0.1 %d`, r.port))
		if strings.Contains(out, want) {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("-p %d:80: 127.0.0.1:%d does not answer: %v %s", r.port, r.port, err, compat.Short(out))
}

// staticAddress: a third container asks for an address with --ip.
func (r *cellRun) staticAddress(ip1 netip.Addr) (netip.Addr, error) {
	want := r.att[2].addr
	if err := r.run(2, "--ip", want.String()); err != nil {
		return want, fmt.Errorf("--ip %s: %w", want, err)
	}
	got, err := r.addr(2)
	if err != nil {
		return got, err
	}
	if got != want {
		return got, fmt.Errorf("--ip %s: the container got %s", want, got)
	}
	return got, r.ping(2, ip1)
}

// held reports whether addr is still held: in host-local's store, or by a
// docker-cni reservation.
func (r *cellRun) held(a *attachment, addr netip.Addr) (bool, error) {
	if r.c.IPAM == compat.IPAMHostLocal {
		if _, ok := storeOwner(a.topo.DataDir, a.topo.Name, addr.String()); ok {
			return true, nil
		}
	}
	rs, err := r.d.records("reservations")
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(rs, func(m map[string]any) bool { return m["Address"] == addr.String() }), nil
}

// disconnectConnect: disconnect takes the third container's interface and
// address; connect gives it one again, which reaches the first.
func (r *cellRun) disconnectConnect(ip3, ip1 netip.Addr) (netip.Addr, error) {
	a := r.att[2]
	if _, err := r.docker("network", "disconnect", a.network, r.ctr(2)); err != nil {
		return ip3, err
	}
	if out, _ := r.e.docker("exec", r.ctr(2), "ip", "-4", "-o", "addr", "show"); strings.Contains(out, " "+ip3.String()+"/") {
		return ip3, fmt.Errorf("after disconnect %s still has %s", r.ctr(2), ip3)
	}
	if held, err := r.held(a, ip3); err != nil || held {
		return ip3, fmt.Errorf("after disconnect %s is still held (%v)", ip3, err)
	}
	if dev := a.topo.Device; dev != "" {
		if _, err := r.ns("ip", "link", "show", dev); err != nil {
			where := "gone from the host"
			links, _ := r.ns("ip", "-o", "link", "show")
			for _, l := range strings.Split(links, "\n") {
				if f := strings.Fields(l); len(f) > 1 && strings.HasSuffix(f[1], "@"+dev+"p:") {
					where = "on the host as " + strings.TrimSuffix(f[1], "@"+dev+"p:")
				}
			}
			return ip3, fmt.Errorf("after docker network disconnect, host device %s is %s, so connect cannot find it", dev, where)
		}
	}
	if _, err := r.docker("network", "connect", a.network, r.ctr(2)); err != nil {
		return ip3, err
	}
	ip, err := r.addr(2)
	if err != nil {
		return ip, err
	}
	return ip, r.ping(2, ip1)
}

// chainedEffect looks for what the chained plugin did, where a user would.
func (r *cellRun) chainedEffect(ip1 netip.Addr) error {
	switch r.c.Chained {
	case compat.ChainBandwidth:
		out, _ := r.ns("tc", "qdisc", "show")
		if !strings.Contains(out, "tbf") {
			r.partial = append(r.partial, "bandwidth: no tbf qdisc on the host while the containers run")
		}
	case compat.ChainFirewall:
		out, _ := r.ns("iptables", "-w", "5", "-S", "CNI-FORWARD")
		if !strings.Contains(out, ip1.String()) {
			r.partial = append(r.partial, "firewall: CNI-FORWARD has no rule for the container")
		}
	case compat.ChainTuning:
		out, err := r.docker("exec", r.ctr(0), "cat", "/sys/class/net/eth0/mtu")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != fmt.Sprint(compat.TuningMTU) {
			r.partial = append(r.partial, fmt.Sprintf("tuning: eth0's MTU is %s inside, not %d", strings.TrimSpace(out), compat.TuningMTU))
		}
	case compat.ChainSBR:
		out, err := r.docker("exec", r.ctr(0), "ip", "rule")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "from "+ip1.String()) {
			r.partial = append(r.partial, "sbr: its source rule is not in the container ("+r.e.joinMode+" mode drops the chain's routing; -o cni.join=direct keeps it on Docker 28+)")
		}
	}
	return nil
}

// pod runs a CRI pod on the cell's conflist and checks it and a container
// reach each other.
func (r *cellRun) pod(ip2 netip.Addr, taken []netip.Addr) error {
	a := r.att[3]
	bins, err := r.h.pluginDir(r.c.Plugins)
	if err != nil {
		return err
	}
	opts := cri.StartOpts{NetNS: r.e.netns, CNIBinDir: bins}
	if r.c.Runtime == compat.RuntimeContainerd2 {
		dir, err := r.h.containerd2()
		if err != nil {
			return err
		}
		opts.Containerd, opts.Ctr = filepath.Join(dir, "containerd"), filepath.Join(dir, "ctr")
	}
	dir, err := os.MkdirTemp("", "cmp-cri-")
	if err != nil {
		return err
	}
	r.cleanup(func() { os.RemoveAll(dir) })
	confDir := filepath.Join(dir, "net.d")
	os.MkdirAll(confDir, 0o755)
	b, err := compat.Conflist(r.c, a.topo)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-"+a.topo.Name+".conflist"), b, 0o644); err != nil {
		return err
	}
	if r.e.netns == "" {
		snap, err := cri.SnapshotHost(r.ctx)
		if err != nil {
			return err
		}
		r.cleanup(func() { snap.Cleanup(context.Background(), r.att[0].topo.Bridge, r.subnet) })
	}
	rt, err := cri.StartWith(r.ctx, filepath.Join(dir, "c"), confDir, opts)
	if err != nil {
		return fmt.Errorf("start %s: %s", r.c.Runtime, compat.Short(err.Error()))
	}
	r.cleanup(func() { rt.Stop() })
	p, err := rt.RunPod(r.ctx, fmt.Sprintf("cmp-pod-%d", r.idx), "default", nil)
	if err != nil && strings.Contains(err.Error(), "unsupported CNI result version") {
		// The runtime's own libcni is older than the conflist: no pod of
		// this version can run on it, with or without docker-cni.
		r.podGap = fmt.Sprintf("%s cannot run pods on a CNI %s conflist (its libcni: unsupported CNI result version %q); the Docker side passed every step", r.c.Runtime, r.c.Version, r.c.Version)
		return nil
	}
	if err != nil {
		return fmt.Errorf("CRI pod (%s): %s", r.c.Runtime, compat.Short(lastLines(err.Error(), 1)))
	}
	pip, err := netip.ParseAddr(p.IP)
	if err != nil || !r.subnet.Contains(pip) || slices.Contains(taken, pip) {
		return fmt.Errorf("CRI pod got address %q: want a free one in %s (containers have %v)", p.IP, r.subnet, taken)
	}
	if err := r.ping(1, pip); err != nil {
		return fmt.Errorf("container -> pod: %w", err)
	}
	if p.NetNS == "" {
		return fmt.Errorf("CRI pod: no netns path in its status")
	}
	var out string
	for i := 0; i < 3; i++ {
		// From the pod's address: sbr routes only what comes from it.
		if out, err = run(r.ctx, "nsenter", "--net="+p.NetNS, "/bin/busybox", "ping", "-c", "1", "-W", "2", "-I", p.IP, ip2.String()); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("pod %s cannot ping container %s: %s", pip, ip2, compat.Short(out))
	}
	if err := rt.RemovePod(r.ctx, p.ID); err != nil {
		return err
	}
	if held, err := r.held(a, pip); err != nil || (held && r.c.IPAM == compat.IPAMHostLocal) {
		return fmt.Errorf("after the pod's removal its address %s is still in the store (%v)", pip, err)
	}
	return nil
}

// removeAll: docker rm and docker network rm leave nothing behind.
func (r *cellRun) removeAll() error {
	for k := range 3 {
		if _, err := r.docker("rm", "-f", r.ctr(k)); err != nil {
			return err
		}
	}
	seen := map[*attachment]bool{}
	for _, a := range r.att[:3] {
		if !seen[a] {
			seen[a] = true
			if _, err := r.docker("network", "rm", a.network); err != nil {
				return err
			}
		}
	}
	var left []string
	for _, a := range r.att {
		if a.topo.DataDir == "" || r.c.IPAM != compat.IPAMHostLocal {
			continue
		}
		ents, _ := os.ReadDir(filepath.Join(a.topo.DataDir, a.topo.Name))
		for _, en := range ents {
			if _, err := netip.ParseAddr(en.Name()); err == nil {
				left = append(left, "store entry "+en.Name())
			}
		}
	}
	for _, table := range []string{"endpoints", "reservations", "pools"} {
		recs, err := r.d.records(table)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if b := fmt.Sprint(rec); strings.Contains(b, r.subnet.String()) || strings.Contains(b, strings.TrimSuffix(r.subnet.Addr().String(), "0")) {
				left = append(left, "docker-cni "+strings.TrimSuffix(table, "s")+" record")
			}
		}
	}
	if out, _ := r.ns("ip", "-o", "link", "show"); strings.Contains(out, ": dcni") {
		left = append(left, "a dcni* link")
	}
	if ok, _ := r.c.PortsFromHost(); ok {
		if out, _ := r.ns("iptables", "-w", "5", "-t", "nat", "-S"); strings.Contains(out, fmt.Sprintf("--dport %d ", r.port)) {
			left = append(left, fmt.Sprintf("a NAT rule of port %d", r.port))
		}
	}
	if r.c.Chained == compat.ChainBandwidth {
		// The kernel's own ifb0, ifb1 stay; the plugin's are bwp<hash>.
		if out, _ := r.ns("ip", "-o", "link", "show", "type", "ifb"); strings.Contains(out, ": bwp") {
			left = append(left, "bandwidth's ifb link")
		}
	}
	if r.c.Main == compat.MainBridge {
		if out, err := r.ns("ip", "-o", "link", "show", "master", r.att[0].topo.Bridge); err == nil && strings.TrimSpace(out) != "" {
			left = append(left, "ports on bridge "+r.att[0].topo.Bridge)
		}
	}
	if r.c.Main == compat.MainHostDevice {
		for _, a := range r.att {
			if _, err := r.ns("ip", "link", "show", a.topo.Device); err != nil {
				left = append(left, "device "+a.topo.Device+" did not come back")
			}
		}
	}
	if len(left) > 0 {
		slices.Sort(left)
		return fmt.Errorf("after docker rm, pod removal and docker network rm: %s", strings.Join(slices.Compact(left), ", "))
	}
	return nil
}

// compose runs examples/compose with Debian's docker-compose on the engine.
func (r *cellRun) compose() error {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		return cellSkip("docker-compose not installed")
	}
	project := fmt.Sprintf("cmpcompose%d", r.idx)
	compose := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(r.ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f",
			filepath.Join(s.repo, "examples", "compose", "docker-compose.yml")}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+r.e.host, "IMAGE="+image, "CNI_DRIVER="+strings.TrimSuffix(filepath.Base(r.d.socket), ".sock"),
			fmt.Sprintf("WEB_PORT=%d", r.port), "SUBNET="+r.subnet.String())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	r.cleanup(func() { compose("down", "-t", "1") })
	if out, err := compose("up", "-d"); err != nil {
		return fmt.Errorf("docker-compose up: %s", compat.Short(lastLines(out, 1)))
	}
	if err := r.published("hello from compose"); err != nil {
		return err
	}
	out, err := compose("exec", "-T", "client", "sh", "-c", `printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 web 80`)
	if err != nil || !strings.Contains(out, "hello from compose") {
		return fmt.Errorf("client -> web by service name: %v %s", err, compat.Short(out))
	}
	if out, err := compose("down", "-t", "1"); err != nil {
		return fmt.Errorf("docker-compose down: %s", compat.Short(lastLines(out, 1)))
	}
	return nil
}
