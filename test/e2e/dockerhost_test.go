package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/test/node"
	"github.com/docker-cni/docker-cni/test/overlay"
)

// A second Docker host, in node 2: its own dockerd (the current engine's
// build) and its own docker-cni, both in the node's netns and in a mount
// namespace of the node's own in which /run/docker/plugins is a dir of the
// host's own (hostBRun/plugins), so dockerd finds this docker-cni's socket
// and not the suite's, as on a machine of its own. Its sockets, exec root
// and data root are under hostBRun and hostBData; its containers' cgroups
// under hostBCgroup.
const (
	hostBRun    = "/run/e2efl/hostb"
	hostBData   = "/var/lib/e2efl/hostb"
	hostBCgroup = "/e2efl-hostb"
)

// dockerHost is that second host: the engine (docker CLI against its
// dockerd) and its docker-cni.
type dockerHost struct {
	engine
	node    *node.Node
	d       *daemon
	dockerd *exec.Cmd
}

// startDockerHost starts the second host in n, its docker-cni's conf dir,
// state and logs under dir; the cleanups remove its containers and
// networks, stop both daemons and remove their dirs. n must outlive it.
func startDockerHost(t *testing.T, n *node.Node, dir string) *dockerHost {
	t.Helper()
	ctx := t.Context()
	h := &dockerHost{node: n, engine: engine{name: "hostb", host: "unix://" + hostBRun + "/docker.sock", joinMode: "handover"}}
	for _, d := range []struct{ file, comm string }{{"docker.pid", "dockerd"}, {"docker-cni.pid", "docker-cni"}} {
		if pid, err := overlay.StopStale(filepath.Join(hostBRun, d.file), d.comm); err != nil || pid != 0 {
			t.Logf("stopped the %s (pid %d) an earlier run left: %v", d.comm, pid, err)
		}
	}
	for _, d := range []string{hostBRun, hostBData} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, d := range []string{hostBRun, hostBData} {
			if err := os.RemoveAll(d); err != nil {
				t.Errorf("remove host B's %s: %v", d, err)
			}
		}
		os.Remove(filepath.Dir(hostBData))
	})
	if err := n.OwnMounts(ctx, map[string]string{"/run/docker/plugins": filepath.Join(hostBRun, "plugins")}); err != nil {
		t.Fatal(err)
	}
	// As dockerd leaves it on a host where it turned forwarding on.
	if out, err := n.Exec(ctx, "iptables", "-w", "5", "-P", "FORWARD", "DROP"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	h.startCNI(t, dir)
	h.startDockerd(t, dir)
	if out, err := run(ctx, "bash", filepath.Join(s.repo, "test", "engines", "image.sh"), h.host); err != nil {
		t.Fatalf("test image on host B: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if ids, _ := h.docker("ps", "-aq"); ids != "" {
			h.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		if ids, _ := h.docker("network", "ls", "-q", "--filter", "driver="+s.driver); ids != "" {
			h.docker(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		}
	})
	return h
}

// startCNI starts host B's docker-cni in the node, serving
// /run/docker/plugins/<driver>.sock there (hostBRun/plugins on the host).
func (h *dockerHost) startCNI(t *testing.T, dir string) {
	t.Helper()
	h.d = &daemon{bin: s.d.bin, socket: filepath.Join("/run/docker/plugins", s.driver+".sock"), dir: dir,
		confDir: filepath.Join(dir, "net.d"), stateDir: filepath.Join(dir, "state"),
		runDir: filepath.Join(hostBRun, "docker-cni"), pluginDir: s.d.pluginDir, hosts: []string{h.host}}
	if err := os.MkdirAll(h.d.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	var err error
	if h.d.log, err = os.Create(filepath.Join(dir, "docker-cni.log")); err != nil {
		t.Fatal(err)
	}
	h.d.cmd = h.node.Command(append([]string{h.d.bin}, serveArgs(h.d)...)...)
	h.d.cmd.Stdout, h.d.cmd.Stderr = h.d.log, h.d.log
	h.d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.d.cmd.Start(); err != nil {
		t.Fatalf("start host B's docker-cni: %v", err)
	}
	os.WriteFile(filepath.Join(hostBRun, "docker-cni.pid"), []byte(fmt.Sprint(h.d.cmd.Process.Pid)), 0o644)
	t.Cleanup(func() {
		if t.Failed() {
			logFileTail(t, h.d.log.Name(), 40)
		}
		h.d.stop()
	})
	sock := filepath.Join(hostBRun, "plugins", s.driver+".sock")
	if err := eventually(t, func() error {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("host B's docker-cni does not serve %s: %v", sock, err)
	}
}

// startDockerd starts host B's dockerd in the node, with its firewall on
// (the node's iptables are its alone) and no default bridge.
func (h *dockerHost) startDockerd(t *testing.T, dir string) {
	t.Helper()
	out, err := run(t.Context(), "bash", filepath.Join(s.repo, "test", "engines", "current.sh"), "bin")
	if err != nil {
		t.Fatalf("current engine's binaries: %v\n%s", err, out)
	}
	bin := lastLine(out)
	conf := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`{"runtimes": {"e2e-runc": {"path": %q}}, "default-runtime": "e2e-runc"}`,
		filepath.Join(bin, "runc"))), 0o644); err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	h.dockerd = h.node.Command(filepath.Join(bin, "dockerd"), "--config-file", conf, "--host", h.host,
		"--data-root", hostBData, "--exec-root", filepath.Join(hostBRun, "exec"),
		"--pidfile", filepath.Join(hostBRun, "docker.pid"), "--bridge", "none",
		"--userland-proxy-path", filepath.Join(bin, "docker-proxy"),
		"--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", hostBCgroup)
	h.dockerd.Env = []string{"PATH=" + bin + ":/usr/sbin:/usr/bin:/sbin:/bin"}
	h.dockerd.Stdout, h.dockerd.Stderr = log, log
	h.dockerd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.dockerd.Start(); err != nil {
		t.Fatalf("start host B's dockerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			logFileTail(t, log.Name(), 40)
		}
		h.stopDockerd(t)
		log.Close()
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := h.docker("info"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host B's dockerd does not answer on %s within 60s", h.host)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// stopDockerd stops host B's dockerd (its containerd goes with it) and
// removes its cgroups.
func (h *dockerHost) stopDockerd(t *testing.T) {
	if h.dockerd == nil {
		return
	}
	h.dockerd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { h.dockerd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		h.dockerd.Process.Kill()
		<-done
		t.Errorf("host B's dockerd did not stop within 30s of SIGTERM: killed")
	}
	h.dockerd = nil
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + hostBCgroup)
	for _, d := range dirs {
		os.Remove(d)
	}
}

// pidNetNS is the netns path of a container of h (through its process:
// its SandboxKey is a mount of host B's mount namespace only).
func (h *dockerHost) pidNetNS(t *testing.T, ctr string) string {
	t.Helper()
	return "/proc/" + h.must(t, "inspect", "-f", "{{.State.Pid}}", ctr) + "/ns/net"
}
