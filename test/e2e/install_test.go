package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// installSubnet is test subnet k of engine e for the install tests (0:
// socket activation, 1: the .deb, 2: the managed plugin), in
// 10.231.100.0/24 to 10.231.105.0/24.
func installSubnet(e engine, k int) string {
	return fmt.Sprintf("10.231.%d.0/24", 100+2*k+e.net/16)
}

// activated is d's binary behind systemd-socket-activate, as
// docker-cni.socket and docker-cni.service run it: systemd-socket-activate
// listens on d's socket and, on the first connection, execs docker-cni in
// its place (same pid) with the socket as fd 3 (LISTEN_FDS) and
// NOTIFY_SOCKET set.
type activated struct {
	cmd    *exec.Cmd
	bin    string
	socket string
	log    string
	notify *net.UnixConn
}

// startActivated starts d's binary socket-activated on d's socket (d must
// be stopped), and stops it at the end of the test, removing the socket
// file as systemd does.
func startActivated(t *testing.T, d *daemon, extra ...string) *activated {
	t.Helper()
	dir := t.TempDir()
	notifyPath := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	a := &activated{bin: d.bin, socket: d.socket, log: filepath.Join(d.dir, "activated.log"), notify: conn}
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"--listen", d.socket, "--fdname", "docker-cni.socket", "--setenv", "NOTIFY_SOCKET=" + notifyPath, d.bin},
		serveArgs(d, extra...)...)
	a.cmd = exec.Command("systemd-socket-activate", args...)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("systemd-socket-activate: %v", err)
	}
	t.Cleanup(func() { a.stop(t) })
	waitFor(t, "systemd-socket-activate listening on "+d.socket, func() bool {
		b, _ := os.ReadFile(a.log)
		return bytes.Contains(b, []byte("Listening on "+d.socket))
	})
	return a
}

// exe is the program the process runs: systemd-socket-activate until the
// first connection, docker-cni after.
func (a *activated) exe() string {
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", a.cmd.Process.Pid))
	return exe
}

// waitNotify waits for the next sd_notify message and checks it is want.
func (a *activated) waitNotify(t *testing.T, want string) {
	t.Helper()
	a.notify.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, err := a.notify.Read(buf)
	if err != nil || string(buf[:n]) != want {
		t.Errorf("NOTIFY_SOCKET: got %q (%v), want %q", buf[:n], err, want)
	}
}

func (a *activated) logContains(s string) bool {
	b, _ := os.ReadFile(a.log)
	return bytes.Contains(b, []byte(s))
}

// stop stops the process (SIGTERM, as systemctl stop does) and removes the
// socket file it leaves, as systemd does when the socket unit stops.
func (a *activated) stop(t *testing.T) {
	if a.cmd.ProcessState == nil {
		a.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("socket-activated docker-cni did not stop within 30s of SIGTERM; killed")
			syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	os.Remove(a.socket)
	a.notify.Close()
	if t.Failed() {
		b, _ := os.ReadFile(a.log)
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		t.Logf("socket-activated docker-cni log (%s, tail):\n%s", a.log, b)
	}
}

// TestInstallSocketActivation: docker-cni started the way docker-cni.socket
// starts it at boot. With the plugin socket held by systemd-socket-activate
// and no daemon behind it, dockerd starts, restarts its restart-policy
// containers, and its first call to the driver starts docker-cni; the call
// waits instead of failing, so the containers come back with their network
// by dockerd's own restart (docker-cni's restart of abandoned containers is
// off). The daemon tells systemd READY=1 and STOPPING=1 and leaves the
// socket file, which is systemd's, where it is.
func TestInstallSocketActivation(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "sockact")
		subnet := installSubnet(e, 0)
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet)
		ctrs := []string{name + "-a", name + "-b"}
		e.container(t, ctrs[0], "--network", name, "--restart", "always")
		e.container(t, ctrs[1], "--network", name, "--restart", "unless-stopped")

		var a *activated
		restartEngine(t, e, func() {
			s.d.stopFor(t)
			a = startActivated(t, s.d, "--restart-containers=false")
			if exe := a.exe(); filepath.Base(exe) != "systemd-socket-activate" {
				t.Fatalf("before dockerd starts, the process runs %q, want systemd-socket-activate (nothing connected yet)", exe)
			}
		})
		for _, c := range ctrs {
			waitState(t, e, c, "running", time.Minute)
		}
		if want, _ := filepath.EvalSymlinks(a.bin); a.exe() != want {
			t.Errorf("the activated process runs %q, want %s", a.exe(), want)
		}
		a.waitNotify(t, "READY=1")
		if !a.logContains("serving the plugin socket systemd passed") {
			t.Error("docker-cni did not log that it serves the passed socket")
		}
		if a.logContains("starting a container the engine gave up on") {
			t.Error("docker-cni started containers itself (--restart-containers=false)")
		}
		ipA, ipB := e.inspectIP(t, ctrs[0], name), e.inspectIP(t, ctrs[1], name)
		for _, p := range [][2]string{{ctrs[0], ipB}, {ctrs[1], ipA}, {ctrs[0], gatewayOf(subnet)}} {
			if err := e.ping(p[0], p[1]); err != nil {
				t.Error(err)
			}
		}

		// Stopped as systemctl stop does: the socket file stays (systemd
		// removes it with the socket unit, RemoveOnStop=yes).
		a.cmd.Process.Signal(syscall.SIGTERM)
		a.waitNotify(t, "STOPPING=1")
		if err := a.cmd.Wait(); err != nil {
			t.Errorf("socket-activated docker-cni exited with %v after SIGTERM", err)
		}
		if _, err := os.Stat(a.socket); err != nil {
			t.Errorf("docker-cni removed the socket systemd passed it: %v", err)
		}
	})
}

// TestInstallDeb: `make deb` builds a package apt installs from the file
// alone (its dependencies are installed); it puts the binary, the units,
// the config and the docs in place, enables the units without a running
// systemd and starts nothing; the installed binary serves both engines (two
// containers reach each other); `apt-get remove --purge` leaves nothing.
func TestInstallDeb(t *testing.T) {
	if st := debStatus(); st != "" {
		t.Fatalf("dpkg knows a docker-cni package on this host (%s): not touching it", st)
	}
	for _, f := range debFiles {
		if _, err := os.Lstat(f); err == nil {
			t.Fatalf("%s exists before the package is installed: not overwriting it", f)
		}
	}
	out, err := os.MkdirTemp("", "docker-cni-deb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(out) })
	// apt reads a local package as user _apt.
	os.Chmod(out, 0o755)
	if log, err := run(t.Context(), "make", "-C", s.repo, "--no-print-directory", "deb", "DEB_OUT="+out); err != nil {
		t.Fatalf("make deb: %v\n%s", err, log)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "docker-cni_*_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb wrote %v, want one docker-cni_<version>_<arch>.deb", debs)
	}
	deb := debs[0]
	if fi, err := os.Stat(deb); err == nil {
		t.Logf("%s: %d bytes", filepath.Base(deb), fi.Size())
	}

	// Nothing to download: every "Inst" of the simulation is docker-cni.
	sim, err := apt(t.Context(), "install", "-s", deb)
	if err != nil {
		t.Fatalf("apt-get install -s %s: %v\n%s", deb, err, sim)
	}
	for _, l := range strings.Split(sim, "\n") {
		if strings.HasPrefix(l, "Inst ") && !strings.HasPrefix(l, "Inst docker-cni ") {
			t.Fatalf("apt wants to install more than docker-cni (a download): %s\n%s", l, sim)
		}
	}
	t.Cleanup(func() { purgeDeb(t) })
	// (--no-download cannot guard this: apt 2.6 then refuses a local file,
	// "Pathname to install is not absolute".)
	if log, err := apt(t.Context(), "install", "-y", deb); err != nil {
		t.Fatalf("apt-get install %s: %v\n%s", deb, err, log)
	}

	for _, f := range debFiles {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("installed package: %v", err)
		}
	}
	if v, err := run(t.Context(), "/usr/bin/docker-cni", "version"); err != nil || !strings.HasPrefix(v, "docker-cni ") {
		t.Errorf("/usr/bin/docker-cni version: %q, %v", v, err)
	}
	checkCLIDocs(t)
	if out, err := run(t.Context(), "systemd-analyze", "verify", "/lib/systemd/system/docker-cni.socket", "/lib/systemd/system/docker-cni.service"); err != nil || out != "" {
		t.Errorf("systemd-analyze verify of the installed units: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("deb-systemd-helper"); err == nil {
		for _, l := range debEnableLinks {
			if _, err := os.Lstat(l); err != nil {
				t.Errorf("units not enabled by the package: %v", err)
			}
		}
	}
	if c, err := net.DialTimeout("unix", s.d.socket, time.Second); err != nil {
		t.Errorf("the suite's daemon no longer serves %s after the install: %v", s.d.socket, err)
	} else {
		c.Close()
	}

	t.Run("serves", func(t *testing.T) {
		s.d.stopFor(t)
		v, err := s.d.variant("/usr/bin/docker-cni", filepath.Join(t.TempDir(), "state"))
		if err != nil {
			t.Fatal(err)
		}
		if err := v.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			v.stop()
			if t.Failed() {
				v.dumpLog(os.Stderr)
			}
		})
		forEngine(t, func(t *testing.T, e engine) {
			name := uniq(t, e, "deb")
			e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", installSubnet(e, 1))
			a, b := name+"-a", name+"-b"
			e.container(t, a, "--network", name)
			e.container(t, b, "--network", name)
			if err := e.ping(a, e.inspectIP(t, b, name)); err != nil {
				t.Error(err)
			}
			if err := e.ping(b, e.inspectIP(t, a, name)); err != nil {
				t.Error(err)
			}
		})
	})

	if log, err := apt(t.Context(), "remove", "--purge", "-y", "docker-cni"); err != nil {
		t.Fatalf("apt-get remove --purge docker-cni: %v\n%s", err, log)
	}
	if st := debStatus(); st != "" {
		t.Errorf("after the purge, dpkg still has docker-cni: %s", st)
	}
	left, _ := filepath.Glob("/var/lib/systemd/deb-systemd-helper-*/*docker-cni*")
	more, _ := filepath.Glob("/var/lib/systemd/deb-systemd-helper-*/*/*docker-cni*")
	for _, f := range append(append(append(debFiles, debEnableLinks...), left...), more...) {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("left after the purge: %s", f)
		}
	}
}

// debFiles are the files the package installs, checked after installing
// and after purging.
var debFiles = []string{
	"/usr/bin/docker-cni",
	"/lib/systemd/system/docker-cni.service",
	"/lib/systemd/system/docker-cni.socket",
	"/etc/default/docker-cni",
	"/usr/share/doc/docker-cni/README.md.gz",
	"/usr/share/doc/docker-cni/docs/install.md.gz",
	"/usr/share/doc/docker-cni/docs/operations.md.gz",
	"/usr/share/doc/docker-cni/examples/kubelet-shared/10-k8s-pod-network.conflist",
	"/usr/share/man/man1/docker-cni.1.gz",
	"/usr/share/man/man1/docker-cni-serve.1.gz",
	"/usr/share/man/man1/docker-cni-networks.1.gz",
	"/usr/share/man/man1/docker-cni-network-create.1.gz",
	"/usr/share/man/man1/docker-cni-doctor.1.gz",
	"/usr/share/bash-completion/completions/docker-cni",
	"/usr/share/zsh/vendor-completions/_docker-cni",
	"/usr/share/fish/vendor_completions.d/docker-cni.fish",
}

// checkCLIDocs: the installed man pages read as man pages of the installed
// commands, and bash completes docker-cni's commands and flag values
// through the installed binary (bash-completion's loader, as an
// interactive shell has it).
func checkCLIDocs(t *testing.T) {
	man, err := run(t.Context(), "bash", "-c", "zcat /usr/share/man/man1/docker-cni-serve.1.gz")
	if err != nil || !strings.Contains(man, `.TH "docker-cni" "1"`) || !strings.Contains(man, `\fB--cni-bin-dir\fP`) || !strings.Contains(man, ".SH EXAMPLE") {
		t.Errorf("docker-cni-serve.1.gz: %v\n%.400s", err, man)
	}
	help, err := run(t.Context(), "/usr/bin/docker-cni", "help", "serve")
	if err != nil || !strings.Contains(help, "--cni-bin-dir string") || !strings.Contains(help, "Examples:") {
		t.Errorf("docker-cni help serve: %v\n%s", err, help)
	}
	complete := func(line string) []string {
		script := `. /usr/share/bash-completion/bash_completion
. /usr/share/bash-completion/completions/docker-cni
read -ra COMP_WORDS <<<"$LINE"
[ "${LINE: -1}" = " " ] && COMP_WORDS+=("")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) COMP_LINE=$LINE COMP_POINT=${#LINE}
__start_docker-cni 2>/dev/null
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
		cmd.Env = append(os.Environ(), "LINE="+line, "PATH=/usr/bin:/bin:/usr/sbin:/sbin")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("bash completion of %q: %v", line, err)
		}
		return strings.Fields(string(out))
	}
	if got := complete("docker-cni net"); !slices.Equal(got, []string{"network", "networks"}) {
		t.Errorf("bash completion of 'docker-cni net': %q, want network networks", got)
	}
	if got := complete("docker-cni networks --format "); !slices.Equal(got, []string{"table", "json"}) {
		t.Errorf("bash completion of 'docker-cni networks --format ': %q, want table json", got)
	}
}

// debEnableLinks are the symlinks enabling the units (deb-systemd-helper).
var debEnableLinks = []string{
	"/etc/systemd/system/sockets.target.wants/docker-cni.socket",
	"/etc/systemd/system/multi-user.target.wants/docker-cni.service",
}

// apt runs apt-get non-interactively, waiting for the dpkg lock.
func apt(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"-o", "DPkg::Lock::Timeout=120"}, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// debStatus is dpkg's status of the docker-cni package ("install ok
// installed", "deinstall ok config-files"), "" when it has none.
func debStatus() string {
	out, err := run(context.Background(), "dpkg-query", "-W", "-f", "${Status}", "docker-cni")
	if err != nil || strings.HasSuffix(out, "not-installed") {
		return ""
	}
	return out
}

// purgeDeb removes the package if a failed test left it installed.
func purgeDeb(t *testing.T) {
	if debStatus() == "" {
		return
	}
	if log, err := apt(context.Background(), "remove", "--purge", "-y", "docker-cni"); err != nil {
		t.Errorf("clean up: apt-get remove --purge docker-cni: %v\n%s", err, log)
	}
}
