package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/cri"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The two nodes: node 1 is the host, node 2 a netns. Names start with
// e2en, addresses lie in Range.
const (
	node1Net, node1Bridge = "e2en1", "e2en1br0"
	node2Name             = "e2en2"
	node2Net, node2Bridge = "e2en2", "e2en2br0"
)

var (
	link2     = netip.MustParsePrefix("10.231.240.0/30")
	node1Pods = netip.MustParsePrefix("10.231.241.0/24")
	node2Pods = netip.MustParsePrefix("10.231.242.0/24")
)

// needRoot skips a test that cannot run here, or fails it under CI=true.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	}
	for _, f := range []string{"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge",
		"/usr/lib/cni/host-local", "/usr/lib/cni/portmap", "/usr/lib/cni/loopback", "/bin/busybox"} {
		if _, err := os.Stat(f); why == "" && err != nil {
			why = "needs " + f
		}
	}
	for _, tool := range []string{"nsenter", "ss", "sysctl", "iptables", "iptables-save", "ip6tables-save"} {
		if _, err := exec.LookPath(tool); why == "" && err != nil {
			why = "needs " + tool
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: this test must run, but it %s", why)
	}
	t.Skip(why)
}

// TestTwoNodes: a pod on node 1 (the host) and a pod on node 2 (a netns
// whose own containerd made its bridge and pod) reach each other both ways
// through the host-gw routes, with the host's FORWARD policy DROP (and
// only thanks to node 2's ACCEPT rules); each sees the other's own pod
// address as a TCP peer (no NAT); the host and node 2 reach the pod across;
// and nothing is left afterwards.
func TestTwoNodes(t *testing.T) {
	needRoot(t)
	began := time.Now()
	ctx := t.Context()
	dir := t.TempDir()
	t.Cleanup(expectClean(t, dir)) // runs last

	restore, err := SetForwardPolicy(ctx, "DROP") // as dockerd sets it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(context.Background()); err != nil {
			t.Errorf("restore the FORWARD policy: %v", err)
		}
	})

	rt1 := startNode1(t, filepath.Join(dir, "node1"))
	n2, rt2 := startNode2(t, filepath.Join(dir, "node2"))
	t.Logf("both containerds up after %v", since(began))

	pod1 := runPod(t, rt1, "pod1", node1Pods)
	pod2 := runPod(t, rt2, "pod2", node2Pods)
	t.Logf("pods up after %v: pod1 %s (netns %s), pod2 %s (netns %s)", since(began), pod1.IP, pod1.NetNS, pod2.IP, pod2.NetNS)
	checkNode2Made(t, n2, rt2)

	for _, c := range []struct {
		from, to *cri.Pod
	}{{pod1, pod2}, {pod2, pod1}} {
		if out, err := ExecIn(ctx, c.from.NetNS, "busybox", "ping", "-c1", "-W2", c.to.IP); err != nil {
			t.Errorf("%s (%s) cannot ping %s (%s): %v\n%s", c.from.Name, c.from.IP, c.to.Name, c.to.IP, err, out)
		}
	}
	if out, err := n2.Exec(ctx, "busybox", "ping", "-c1", "-W2", pod1.IP); err != nil {
		t.Errorf("node 2 cannot ping pod1 (%s): %v\n%s", pod1.IP, err, out)
	}
	if out, err := hostRun(ctx, "ping", "-c1", "-W2", pod2.IP); err != nil {
		t.Errorf("the host cannot ping pod2 (%s): %v\n%s", pod2.IP, err, out)
	}
	t.Logf("pings done after %v", since(began))

	expectPeer(t, rt2, pod2, rt1, pod1, 5000)
	expectPeer(t, rt1, pod1, rt2, pod2, 5001)
	expectHTTP(t, rt2, pod2, 8080)
	t.Logf("TCP done after %v", since(began))

	// The control: without node 2's ACCEPT rules the DROP policy holds.
	if err := dropForward(ctx, n2.rules()); err != nil {
		t.Fatal(err)
	}
	if out, err := ExecIn(ctx, pod1.NetNS, "busybox", "ping", "-c1", "-W1", pod2.IP); err == nil {
		t.Errorf("pod1 pings pod2 without node 2's FORWARD rules: is the FORWARD policy not DROP?\n%s", out)
	}
}

// startNode1 runs the host's containerd on node 1's bridge conflist; its
// cleanup removes the pods, then what their network left on the host.
func startNode1(t *testing.T, dir string) *cri.Runtime {
	t.Helper()
	snap, err := cri.SnapshotHost(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cleanHost := func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := snap.Cleanup(ctx, node1Bridge, node1Pods); err != nil {
			t.Errorf("clean up node 1: %v", err)
		}
	}
	cleanHost() // an earlier, interrupted run's leftovers (the names are ours)
	t.Cleanup(cleanHost)
	confDir := writeConf(t, dir, BridgeConf{Network: node1Net, Bridge: node1Bridge, Subnet: node1Pods})
	rt, err := cri.Start(t.Context(), filepath.Join(dir, "containerd"), confDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopRuntime(t, rt))
	return rt
}

// startNode2 adds node 2 and runs its containerd in its netns on a bridge
// + portmap conflist.
func startNode2(t *testing.T, dir string) (*Node, *cri.Runtime) {
	t.Helper()
	n, err := Add(t.Context(), node2Name, link2, node2Pods)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Remove(context.Background()); err != nil {
			t.Errorf("remove node 2: %v", err)
		}
	})
	t.Logf("node 2: netns %s, %s %s <-> %s %s", n.NetNS, n.HostIf, n.HostIP, n.NodeIf, n.NodeIP)
	confDir := writeConf(t, dir, BridgeConf{Network: node2Net, Bridge: node2Bridge, Subnet: node2Pods, Portmap: true})
	rt, err := n.StartCRI(t.Context(), filepath.Join(dir, "containerd"), confDir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopRuntime(t, rt))
	return n, rt
}

// writeConf writes c's conflist (host-local's store under dir) into a new
// conf dir and returns it.
func writeConf(t *testing.T, dir string, c BridgeConf) string {
	t.Helper()
	c.DataDir = filepath.Join(dir, "ipam")
	b, err := BridgeConflist(c)
	if err != nil {
		t.Fatal(err)
	}
	confDir := filepath.Join(dir, "net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-"+c.Network+".conflist"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return confDir
}

// stopRuntime stops rt, showing its log's tail when the test failed.
func stopRuntime(t *testing.T, rt *cri.Runtime) func() {
	return func() {
		if t.Failed() {
			if log, err := os.ReadFile(rt.LogFile); err == nil {
				lines := strings.Split(strings.TrimSpace(string(log)), "\n")
				t.Logf("%s tail:\n%s", rt.LogFile, strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
		if err := rt.Stop(); err != nil {
			t.Errorf("stop runtime %s: %v", rt.WorkDir, err)
		}
	}
}

func runPod(t *testing.T, rt *cri.Runtime, name string, subnet netip.Prefix) *cri.Pod {
	t.Helper()
	pod, err := rt.RunPod(t.Context(), name, "e2en-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ip, err := netip.ParseAddr(pod.IP); err != nil || !subnet.Contains(ip) {
		t.Fatalf("pod %s: IP %q, want an address in %s", name, pod.IP, subnet)
	}
	if !strings.HasPrefix(pod.NetNS, rt.WorkDir+"/") {
		t.Fatalf("pod %s: netns %q, want it under its runtime's work dir %s", name, pod.NetNS, rt.WorkDir)
	}
	return pod
}

// checkNode2Made: node 2's bridge and pod2's veth are in node 2's netns,
// not on the host, and node 2's containerd runs in that netns.
func checkNode2Made(t *testing.T, n *Node, rt *cri.Runtime) {
	t.Helper()
	if _, err := netlink.LinkByName(node2Bridge); err == nil {
		t.Errorf("bridge %s is on the host, want it only in node 2", node2Bridge)
	}
	out, err := n.Exec(t.Context(), "ip", "-o", "link", "show", "master", node2Bridge)
	if err != nil || !strings.Contains(out, "veth") {
		t.Errorf("node 2: no veth on %s: %v\n%s", node2Bridge, err, out)
	}
	pid, err := os.ReadFile(filepath.Join(rt.WorkDir, "containerd.pid"))
	if err != nil {
		t.Fatal(err)
	}
	ours, err1 := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/ns/net")
	want, err2 := netnsID(n.NetNS)
	if err1 != nil || err2 != nil || ours != want {
		t.Errorf("node 2's containerd runs in netns %q, want node 2's %q (%v, %v)", ours, want, err1, err2)
	}
}

// netnsID is the "net:[inode]" name of the netns mounted at path.
func netnsID(path string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("net:[%d]", st.Ino), nil
}

// expectPeer: a TCP connection from cli's pod to srv's pod shows, in the
// server's netns, cli's own pod address as the peer (no NAT anywhere).
func expectPeer(t *testing.T, srvRT *cri.Runtime, srv *cri.Pod, cliRT *cri.Runtime, cli *cri.Pod, port uint16) {
	t.Helper()
	ctx := t.Context()
	p := fmt.Sprint(port)
	// Both ends hold the connection: nc exits at the end of its stdin.
	if _, err := srvRT.RunContainer(ctx, srv, []string{"/bin/busybox", "sh", "-c", "sleep 600 | nc -l -p " + p}); err != nil {
		t.Fatal(err)
	}
	if err := eventually(ctx, func() error {
		out, err := ExecIn(ctx, srv.NetNS, "ss", "-tlnH", "sport = :"+p)
		if err == nil && out == "" {
			err = errors.New("not listening yet")
		}
		return err
	}); err != nil {
		t.Fatalf("%s: no listener on port %s: %v", srv.Name, p, err)
	}
	if _, err := cliRT.RunContainer(ctx, cli, []string{"/bin/busybox", "sh", "-c", "sleep 600 | nc " + srv.IP + " " + p}); err != nil {
		t.Fatal(err)
	}
	var peers []netip.Addr
	err := eventually(ctx, func() error {
		out, err := ExecIn(ctx, srv.NetNS, "ss", "-tnH", "state", "established", "sport = :"+p)
		if peers = PeerAddrs(out); err == nil && len(peers) == 0 {
			err = fmt.Errorf("no connection yet (ss: %q)", out)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%s (%s) -> %s (%s):%s: %v", cli.Name, cli.IP, srv.Name, srv.IP, p, err)
	}
	if len(peers) != 1 || peers[0].String() != cli.IP {
		t.Errorf("%s sees the connection from %s as coming from %v, want %s (no NAT)", srv.Name, cli.Name, peers, cli.IP)
	}
}

// expectHTTP: the host (node 1's processes, as a kubelet probe) gets an
// answer from an HTTP server in pod, across the host-gw route.
func expectHTTP(t *testing.T, rt *cri.Runtime, pod *cri.Pod, port uint16) {
	t.Helper()
	ctx := t.Context()
	if _, err := rt.RunContainer(ctx, pod, []string{"/bin/busybox", "sh", "-c",
		fmt.Sprintf("mkdir -p /tmp/www && hostname >/tmp/www/index.html && exec httpd -f -p %d -h /tmp/www", port)}); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:%d/", pod.IP, port)
	var body string
	err := eventually(ctx, func() (err error) {
		body, err = httpGet(ctx, url)
		return err
	})
	if err != nil {
		t.Errorf("the host cannot get %s: %v", url, err)
	} else if body != pod.Name {
		t.Errorf("%s answered %q, want the pod's hostname %q", url, body, pod.Name)
	}
}

// eventually retries f every 200ms for up to 15s.
func eventually(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// hostRun runs busybox on the host with only PATH in its environment.
func hostRun(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/busybox", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// httpGet fetches url directly (never through a proxy) and returns the
// trimmed body of a 200 answer.
func httpGet(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", url, resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

// TestOwnMounts: an overlay node with a mount namespace of its own sees a
// dir of the test's at a path where the host sees its own (or nothing),
// the host does not see the node's mount, and Remove leaves nothing.
func TestOwnMounts(t *testing.T) {
	needRoot(t)
	ctx := t.Context()
	dir := t.TempDir()
	t.Cleanup(expectClean(t, dir)) // runs last
	n, err := AddOverlay(ctx, "e2efl9", netip.MustParsePrefix("10.251.9.0/30"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Remove(context.Background()); err != nil {
			t.Errorf("remove node: %v", err)
		}
		if _, err := os.Stat(MountNSDir); !os.IsNotExist(err) {
			t.Errorf("left %s: %v", MountNSDir, err)
		}
	})
	target, source := filepath.Join(dir, "seen"), filepath.Join(dir, "own")
	if err := n.OwnMounts(ctx, map[string]string{target: source}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(source, "mark"), []byte("node"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := n.Exec(ctx, "cat", filepath.Join(target, "mark")); err != nil || out != "node" {
		t.Errorf("the node does not see its own dir at %s: %q, %v", target, out, err)
	}
	if _, err := os.Stat(filepath.Join(target, "mark")); !os.IsNotExist(err) {
		t.Errorf("the host sees the node's mount at %s: %v", target, err)
	}
	if out, err := n.Exec(ctx, "ip", "-o", "link", "show", n.NodeIf); err != nil || !strings.Contains(out, n.NodeIf) {
		t.Errorf("commands in the node's mount namespace do not run in its netns: %q, %v", out, err)
	}
}
