package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The smoke network: names start with cri-, addresses in 10.238.0.0/16.
const (
	smokeNet    = "cri-smoke"
	smokeBridge = "cri-smoke0"
)

var smokeSubnet = netip.MustParsePrefix("10.238.1.0/24")

// needRoot skips a test that needs root, or fails it under CI=true.
func needRoot(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	}
	for _, f := range []string{"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/firewall", "/bin/busybox"} {
		if _, err := os.Stat(f); why == "" && err != nil {
			why = "needs " + f
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

// Plugin configs of the smoke conflist, marshalled as they are.
type (
	conflist struct {
		CNIVersion string `json:"cniVersion"`
		Name       string `json:"name"`
		Plugins    []any  `json:"plugins"`
	}
	bridgeConf struct {
		Type      string        `json:"type"`
		Bridge    string        `json:"bridge"`
		IsGateway bool          `json:"isGateway"`
		IPMasq    bool          `json:"ipMasq"`
		IPAM      hostLocalIPAM `json:"ipam"`
	}
	hostLocalIPAM struct {
		Type    string                `json:"type"`
		Ranges  [][]map[string]string `json:"ranges"`
		DataDir string                `json:"dataDir"`
	}
	pluginConf struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities,omitempty"`
	}
)

// smokeConflist is bridge + host-local + portmap + firewall (dockerd sets
// the FORWARD policy to DROP; the firewall plugin accepts the pods' traffic).
// No ipMasq and no default route: pods talk to the host only.
func smokeConflist(dataDir string) conflist {
	return conflist{
		CNIVersion: "1.0.0",
		Name:       smokeNet,
		Plugins: []any{
			bridgeConf{
				Type: "bridge", Bridge: smokeBridge, IsGateway: true,
				IPAM: hostLocalIPAM{
					Type:    "host-local",
					Ranges:  [][]map[string]string{{{"subnet": smokeSubnet.String()}}},
					DataDir: dataDir,
				},
			},
			pluginConf{Type: "portmap", Capabilities: map[string]bool{"portMappings": true}},
			pluginConf{Type: "firewall"},
		},
	}
}

// hostRun runs busybox on the host with an empty environment (so no proxy
// variable can send traffic elsewhere) and returns its output.
func hostRun(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/busybox", args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// httpGet fetches url directly (never through a proxy) and returns the
// trimmed body of a 200 answer. (Debian's busybox-static wget segfaults.)
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
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, body)
	}
	return strings.TrimSpace(string(body)), nil
}

// storeIPs is host-local's store for the network: IP -> first line (the
// container id) of each reservation file.
func storeIPs(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	ips := map[string]string{}
	for _, e := range ents {
		if _, err := netip.ParseAddr(e.Name()); err != nil {
			continue // lock, last_reserved_ip.0
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		ips[e.Name()], _, _ = strings.Cut(strings.ReplaceAll(string(b), "\r", ""), "\n")
	}
	return ips
}

// smokeRules are the iptables rules (all families and tables) that name the
// smoke bridge or subnet, as "tool -t table -A chain args ".
func smokeRules(t *testing.T) []string {
	t.Helper()
	var rules []string
	for _, tool := range iptablesTools {
		for _, table := range iptablesTables {
			dump, err := iptablesSave(t.Context(), tool, table)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range parseSave(dump).rules {
				if mentions(r, smokeBridge, smokeSubnet) {
					rules = append(rules, fmt.Sprintf("%s -t %s -A %s %s ", tool, table, r.chain, strings.Join(r.args, " ")))
				}
			}
		}
	}
	return rules
}

// TestPodsOnBridge: three pods run at once on a bridge conflist get three
// addresses in the subnet, recorded in host-local's store under their
// sandbox ids; the host pings them and reaches an HTTP server in each; and
// removing them frees the addresses and leaves no firewall rules.
func TestPodsOnBridge(t *testing.T) {
	needRoot(t)
	podsOnBridge(t, StartOpts{})
}

// TestPodsOnBridgeContainerd2 is TestPodsOnBridge on containerd 2.x, built
// once from the Go module proxy by test/compat/containerd2.sh (its config
// is version 3, containerd.sh writes it), with the runc Debian ships.
func TestPodsOnBridgeContainerd2(t *testing.T) {
	needRoot(t)
	out, err := exec.CommandContext(t.Context(), "bash", filepath.Join(filepath.Dir(scriptPath()), "..", "compat", "containerd2.sh")).Output()
	if err != nil {
		t.Fatalf("build containerd 2.x (test/compat/containerd2.sh): %v\n%s", err, exitStderr(err))
	}
	dir := strings.TrimSpace(string(out))
	podsOnBridge(t, StartOpts{Containerd: filepath.Join(dir, "containerd"), Ctr: filepath.Join(dir, "ctr")})
}

// exitStderr is the stderr an *exec.ExitError carries, if any.
func exitStderr(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

func podsOnBridge(t *testing.T, opts StartOpts) {
	began := time.Now()
	ctx := t.Context()

	snap, err := SnapshotHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var netnsPaths []string
	cleanHost := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := snap.Cleanup(cctx, smokeBridge, smokeSubnet, netnsPaths...); err != nil {
			t.Errorf("clean up host: %v", err)
		}
	}
	cleanHost() // leftovers of an earlier, interrupted run (the names are ours)
	t.Cleanup(cleanHost)

	dir := t.TempDir()
	confDir, dataDir := filepath.Join(dir, "net.d"), filepath.Join(dir, "ipam")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(smokeConflist(dataDir), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-"+smokeNet+".conflist"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	rt, err := StartWith(ctx, filepath.Join(dir, "containerd"), confDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if log, err := os.ReadFile(rt.LogFile); err == nil {
				lines := strings.Split(strings.TrimSpace(string(log)), "\n")
				t.Logf("containerd log tail:\n%s", strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
		if err := rt.Stop(); err != nil {
			t.Errorf("stop runtime: %v", err)
		}
	})
	t.Logf("containerd up after %v", time.Since(began).Round(time.Millisecond))

	// Three pods at once.
	pods := make([]*Pod, 3)
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			pods[i], errs[i] = rt.RunPod(ctx, fmt.Sprintf("cri-smoke-%d", i), "cri-test", map[string]string{"app": "cri-smoke"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
		if pods[i] != nil {
			netnsPaths = append(netnsPaths, pods[i].NetNS)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("3 pods up after %v", time.Since(began).Round(time.Millisecond))

	storeDir := filepath.Join(dataDir, smokeNet)
	store := storeIPs(t, storeDir)
	seen := map[string]string{}
	for _, p := range pods {
		t.Logf("pod %s: id %.12s ip %s netns %s", p.Name, p.ID, p.IP, p.NetNS)
		ip, err := netip.ParseAddr(p.IP)
		if err != nil || !smokeSubnet.Contains(ip) {
			t.Errorf("pod %s: IP %q, want an address in %s", p.Name, p.IP, smokeSubnet)
		}
		if other, dup := seen[p.IP]; dup {
			t.Errorf("pods %s and %s share IP %s", other, p.Name, p.IP)
		}
		seen[p.IP] = p.Name
		if id, ok := store[p.IP]; !ok {
			t.Errorf("pod %s: no file for %s in host-local's store %s (have %v)", p.Name, p.IP, storeDir, store)
		} else if id != p.ID {
			t.Errorf("pod %s: host-local's %s holds container id %q, want the sandbox id %q", p.Name, p.IP, id, p.ID)
		}
		if p.NetNS == "" {
			t.Errorf("pod %s: no netns path in the sandbox status", p.Name)
		} else if !strings.HasPrefix(p.NetNS, rt.WorkDir+"/") {
			t.Errorf("pod %s: netns %s, want it under the work dir %s (not /var/run/netns)", p.Name, p.NetNS, rt.WorkDir)
		}
	}
	if len(store) != len(pods) {
		t.Errorf("host-local's store holds %d addresses, want %d: %v", len(store), len(pods), store)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The host pings each pod.
	for _, p := range pods {
		if out, err := hostRun(ctx, "ping", "-c1", "-W2", p.IP); err != nil {
			t.Errorf("host cannot ping pod %s at %s: %v\n%s", p.Name, p.IP, err, out)
		}
	}

	// A TCP service in each pod answers the host, with that pod's hostname.
	for _, p := range pods {
		if _, err := rt.RunContainer(ctx, p, []string{"/bin/busybox", "sh", "-c",
			"mkdir -p /tmp/www && hostname >/tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pods {
		url := "http://" + p.IP + ":8080/"
		var out string
		var err error
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if out, err = httpGet(ctx, url); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("pod %s: host gets %s: %v", p.Name, url, err)
		} else if out != p.Name {
			t.Errorf("pod %s: %s answered %q, want the pod's hostname %q", p.Name, url, out, p.Name)
		}
	}
	t.Logf("pings and HTTP done after %v", time.Since(began).Round(time.Millisecond))

	// The firewall plugin accepted each pod's traffic in CNI-FORWARD.
	rules := smokeRules(t)
	for _, p := range pods {
		if !slices.ContainsFunc(rules, func(r string) bool { return strings.Contains(r, " "+p.IP+"/32 ") }) {
			t.Errorf("pod %s: no iptables rule for %s while it runs; rules naming the subnet: %q", p.Name, p.IP, rules)
		}
	}

	// Removing the pods runs CNI DEL: the store empties, the rules go.
	for _, p := range pods {
		if err := rt.RemovePod(ctx, p.ID); err != nil {
			t.Error(err)
		}
	}
	if left := storeIPs(t, storeDir); len(left) != 0 {
		t.Errorf("host-local's store still holds %v after the pods were removed", left)
	}
	for _, p := range pods {
		if _, err := os.Stat(p.NetNS); err == nil {
			t.Errorf("pod %s: netns %s still there after removal", p.Name, p.NetNS)
		}
	}
	for _, r := range smokeRules(t) {
		t.Errorf("rule left after the pods were removed: %s", r)
	}
	// Removing again is a no-op, as a kubelet retrying would expect.
	if err := rt.RemovePod(ctx, pods[0].ID); err != nil {
		t.Errorf("second removal: %v", err)
	}
	t.Logf("pods removed after %v", time.Since(began).Round(time.Millisecond))
}
