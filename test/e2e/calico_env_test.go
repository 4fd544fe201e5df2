package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/docker-cni/docker-cni/test/cri"
)

// The Calico tests run the real Calico binaries, built from Calico's source
// by `make calico-check CALICO_SRC=...` (test/calico/build.sh): Calico is not
// on the Go module proxy, so CI cannot build them. Without E2E_CALICO_BIN
// naming their dir, the tests skip, saying so (CI's run shows them as
// skipped, never as passed); given it, a missing binary fails.
const calicoBinEnv = "E2E_CALICO_BIN"

// calicoBin is the dir of calico (calico-ipam beside it), calicoctl and
// calico-felix.
func calicoBin(t *testing.T) string {
	t.Helper()
	dir := os.Getenv(calicoBinEnv)
	if dir == "" {
		t.Skipf("the Calico binaries are not given (%s): `make calico-check CALICO_SRC=<projectcalico/calico source> LIBBPF_SRC=<libbpf source>` builds them and runs this test", calicoBinEnv)
	}
	for _, b := range []string{"calico", "calico-ipam", "calicoctl", "calico-felix"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			t.Fatalf("%s=%s: %v", calicoBinEnv, dir, err)
		}
	}
	return dir
}

// linkCalicoPlugins puts calico and calico-ipam into the daemon's plugin
// dir when the Calico binaries are given.
func linkCalicoPlugins(dir string) error {
	bin := os.Getenv(calicoBinEnv)
	if bin == "" {
		return nil
	}
	for _, p := range []string{"calico", "calico-ipam"} {
		os.Remove(filepath.Join(dir, p))
		if err := os.Symlink(filepath.Join(bin, p), filepath.Join(dir, p)); err != nil {
			return err
		}
	}
	return nil
}

// background is a daemon a Calico test runs (etcd, felix, kube-apiserver),
// stopped at the end of the test; its output goes to log.
type background struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan error
}

func startBackground(t *testing.T, name, log string, env []string, argv ...string) *background {
	t.Helper()
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	b := &background{name: name, log: log, done: make(chan error, 1)}
	b.cmd = exec.Command(argv[0], argv[1:]...)
	b.cmd.Stdout, b.cmd.Stderr = f, f
	b.cmd.Env = append(os.Environ(), env...)
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { b.done <- b.cmd.Wait(); f.Close() }()
	t.Cleanup(b.stop)
	return b
}

// stop ends the daemon (its process group): SIGTERM, then SIGKILL.
func (b *background) stop() {
	if b.cmd.Process == nil {
		return
	}
	syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	}
}

// tail is the end of the daemon's log, for failures.
func (b *background) tail() string {
	out, _ := os.ReadFile(b.log)
	if len(out) > 4000 {
		out = out[len(out)-4000:]
	}
	return string(out)
}

// waitReady polls ready until it succeeds, the daemon exits, or 60 s pass.
func (b *background) waitReady(t *testing.T, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ready()
		if err == nil {
			return
		}
		select {
		case werr := <-b.done:
			b.done <- werr
			t.Fatalf("%s exited: %v\n%s", b.name, werr, b.tail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s: %v\n%s", b.name, err, b.tail())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startEtcd runs Debian's etcd on loopback ports of the Calico tests, with
// its data in dir, and returns its client URL.
func startEtcd(t *testing.T, dir string, clientPort, peerPort int) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	portsFree(t, clientPort, peerPort)
	client, peer := fmt.Sprintf("http://127.0.0.1:%d", clientPort), fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	b := startBackground(t, "etcd", filepath.Join(dir, "etcd.log"), nil, "etcd", "--name", "e2ecal", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "e2ecal="+peer)
	b.waitReady(t, func() error {
		resp, err := http.Get(client + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	return client
}

// portsFree fails the test when something listens on a loopback port a
// daemon of the test is about to take: the test would talk to it instead.
func portsFree(t *testing.T, ports ...int) {
	t.Helper()
	for _, p := range ports {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second); err == nil {
			c.Close()
			t.Fatalf("127.0.0.1:%d is taken by another process: stop it (the Calico tests run their own daemons there)", p)
		}
	}
}

// calicoctl runs calicoctl with the datastore env and returns its output.
func calicoctl(bin string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "calicoctl"), append([]string{"--allow-version-mismatch"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// calicoHost removes, at the end of a Calico test, what Calico leaves on
// the host that was not there before: cali* veths (and with them their
// routes) and, where felix ran, its iptables chains and ipsets.
func calicoHost(t *testing.T) {
	t.Helper()
	before := map[string]bool{}
	for _, l := range caliLinks() {
		before[l] = true
	}
	t.Cleanup(func() {
		for _, l := range caliLinks() {
			if !before[l] {
				if link, err := netlink.LinkByName(l); err == nil {
					netlink.LinkDel(link)
				}
			}
		}
	})
}

func caliLinks() []string {
	links, _ := netlink.LinkList()
	var out []string
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "cali") {
			out = append(out, n)
		}
	}
	return out
}

// calicoRuntime starts a containerd CRI runtime whose pods use conflist
// (named name), as a node's kubelet would use it.
func calicoRuntime(t *testing.T, dir, name, conflist string) *cri.Runtime {
	t.Helper()
	confDir := filepath.Join(dir, "pods-net.d")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-"+name+".conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := cri.StartWith(t.Context(), filepath.Join(dir, "containerd"), confDir, cri.StartOpts{CNIBinDir: s.d.pluginDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Stop() })
	return rt
}

// calicoPod runs, through the CRI runtime, a pod serving HTTP on 8080 (its
// hostname is the pod name).
func calicoPod(t *testing.T, rt *cri.Runtime) *cri.Pod {
	t.Helper()
	pod, err := rt.RunPod(t.Context(), "e2ecal-web", "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.RemovePod(context.Background(), pod.ID) })
	if _, err := rt.RunContainer(t.Context(), pod, []string{"/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/etc"}); err != nil {
		t.Fatal(err)
	}
	return pod
}

// editConflist rewrites an example's conflist for the test: its name, and
// fn's changes to its calico plugin.
func editConflist(t *testing.T, example, name string, fn func(calico map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.repo, "examples", "calico", example, "10-calico.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(b, &conf); err != nil {
		t.Fatalf("examples/calico/%s/10-calico.conflist: %v", example, err)
	}
	conf["name"] = name
	fn(mainPlugin(conf))
	out, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// runCalicoExample runs the commands of examples/calico/<example> against
// engine e with env, naming its network and container after the test;
// both are removed first (a failed run leaves them) and at the end.
func runCalicoExample(t *testing.T, e engine, example string, env []string) {
	t.Helper()
	net, ctr := "e2ecal-"+e.name+"-demo", "e2ecal-"+e.name+"-demo-c"
	clean := func() {
		ids, _ := e.docker("ps", "-aq", "--filter", "network="+net)
		e.docker(append([]string{"rm", "-f", ctr}, strings.Fields(ids)...)...)
		e.docker("network", "rm", net)
	}
	clean()
	t.Cleanup(clean)
	runReadme(t, e, filepath.Join(s.repo, "examples", "calico", example), append(env, "NET="+net, "NAME="+ctr,
		"CNI_CONF_DIR="+s.d.confDir, "DRIVER="+s.driver, "IMAGE="+image))
}
