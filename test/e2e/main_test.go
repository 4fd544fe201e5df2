// Package e2e drives real Docker engines and a real docker-cni daemon through
// the docker CLI, as users do, with the real CNI plugins. It needs root. With
// CI=true nothing here skips: an engine or daemon that cannot start fails the
// run.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// engine is one Docker engine the suite runs against.
type engine struct {
	// name is used in subtest names; host is its DOCKER_HOST.
	name, host string
	// joinMode is the Join mode docker-cni must pick for it.
	joinMode string
	// net is the second octet block of the test subnets used on it, so
	// that engines never share a subnet: 10.231.<net+k>.0/24.
	net int
}

// suite is what TestMain set up for the tests.
type suite struct {
	repo    string
	engines []engine
	d       *daemon
	// driver is the driver (and IPAM driver) name: the socket's base name.
	driver string
	// premises are the host settings the suite set, restored at the end.
	premises *premises
}

var s suite

const image = "docker-cni-test/busybox:latest"

func inCI() bool { return os.Getenv("CI") == "true" }

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		if inCI() {
			fmt.Fprintln(os.Stderr, "e2e: CI=true but not root: the end-to-end suite must run")
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "e2e: skipped: needs root (run `make test` as root)")
		os.Exit(0)
	}
	unlock, err := suiteLock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	defer unlock()
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: setup failed:", err)
		s.premises.restore()
		if s.d != nil {
			s.d.stop()
			s.d.dumpLog(os.Stderr)
			s.d.removeDir()
		}
		os.Exit(1)
	}
	code := m.Run()
	if code != 0 {
		s.d.dumpLog(os.Stderr)
	}
	s.d.stop()
	s.premises.restore()
	s.d.removeDir()
	os.Exit(code)
}

// suiteLockFile serialises runs of the suite on one machine: two runs
// would share the engines, the plugin socket and the host's firewall.
const suiteLockFile = "/run/docker-cni-e2e-suite.lock"

// suiteLock waits until no other run of the suite holds the lock, and
// takes it; the kernel drops it when the process exits, however it ends.
func suiteLock() (func(), error) {
	f, err := os.OpenFile(suiteLockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", suiteLockFile, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: another run of the suite holds %s; waiting\n", suiteLockFile)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", suiteLockFile, err)
		}
	}
	return func() { f.Close() }, nil
}

func setup() error {
	keepFDsToSelf()
	_, file, _, _ := runtime.Caller(0)
	s.repo = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	s.driver = "cni"
	if v := os.Getenv("E2E_DRIVER"); v != "" {
		s.driver = v
	}
	want := strings.Split(envOr("E2E_ENGINES", "debian,current"), ",")
	for i, name := range want {
		e := engine{name: name, net: 16 * i}
		switch name {
		case "debian":
			e.joinMode = "move"
		case "current":
			e.joinMode = "handover"
		default:
			return fmt.Errorf("E2E_ENGINES: unknown engine %q (debian, current)", name)
		}
		script := filepath.Join(s.repo, "test", "engines", name+".sh")
		if out, err := run(context.Background(), "bash", script, "start"); err != nil {
			return fmt.Errorf("start engine %s: %v\n%s", name, err, out)
		}
		host, err := run(context.Background(), "bash", script, "host")
		if err != nil {
			return fmt.Errorf("engine %s host: %v", name, err)
		}
		e.host = strings.TrimSpace(host)
		if out, err := run(context.Background(), "bash", filepath.Join(s.repo, "test", "engines", "image.sh"), e.host); err != nil {
			return fmt.Errorf("test image on %s: %v\n%s", name, err, out)
		}
		s.engines = append(s.engines, e)
	}
	// After the engines: a dockerd that turns forwarding on sets the
	// policy itself.
	var err error
	if s.premises, err = setPremises(context.Background()); err != nil {
		return fmt.Errorf("host premises: %w", err)
	}
	d, err := newDaemon(s.repo, s.driver)
	if err != nil {
		return err
	}
	for _, e := range s.engines {
		d.hosts = append(d.hosts, e.host)
	}
	s.d = d
	if err := d.start(); err != nil {
		return err
	}
	return sweepLeftovers(context.Background())
}

// keepFDsToSelf marks every file descriptor above stderr close-on-exec:
// those this process inherited (flock's hold on the e2e lock) would
// otherwise pass to every daemon the suite starts (docker-cni, etcd,
// flanneld, a second dockerd), which keep them, and the lock, for as long
// as they live, after a killed run too.
func keepFDsToSelf() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// run runs a command and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// docker runs the docker CLI against an engine.
func (e engine) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// must runs the docker CLI and fails the test on error.
func (e engine) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// subnet is the /24 number k of this engine's test block.
func (e engine) subnet(k int) string {
	return fmt.Sprintf("10.231.%d.0/24", e.net+k)
}

// extraSubnet is the /24 number k (0 to 5) of this engine's second block,
// 10.231.52.0/22 and on: the first one is full.
func (e engine) extraSubnet(k int) string {
	return fmt.Sprintf("10.231.%d.0/24", 52+e.net/16*6+k)
}

// forEngine runs a test once per engine.
func forEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	for _, e := range s.engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e) })
	}
}

// uniq makes a name unique to this test and engine.
func uniq(t *testing.T, e engine, base string) string {
	return fmt.Sprintf("e2e-%s-%s-%d", e.name, base, time.Now().UnixNano()%100000)
}

// network creates a Docker network and removes it (and its containers) at
// the end of the test.
func (e engine) network(t *testing.T, name string, args ...string) {
	t.Helper()
	e.must(t, append(append([]string{"network", "create"}, args...), name)...)
	t.Cleanup(func() { e.cleanNetwork(t, name) })
}

// cleanNetwork removes a network a test made and the containers on it,
// reporting a network it cannot remove.
func (e engine) cleanNetwork(t *testing.T, name string) {
	if ids, _ := e.docker("ps", "-aq", "--filter", "network="+name); ids != "" {
		e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
	}
	if _, err := e.removeNetwork(name); err != nil && !isNoSuchNetwork(err) {
		t.Errorf("clean up: %v", err)
	}
}

// container runs a detached container that sleeps, removed at the end.
func (e engine) container(t *testing.T, name string, args ...string) {
	t.Helper()
	a := append([]string{"run", "-d", "--name", name}, args...)
	// Registered first: a failed run can leave the container created.
	t.Cleanup(func() { e.docker("rm", "-f", name) })
	e.must(t, append(a, image, "sleep", "3600")...)
}

// inspectIP is the IPv4 address docker inspect reports on a network.
func (e engine) inspectIP(t *testing.T, ctr, network string) string {
	t.Helper()
	ip := e.must(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), ctr)
	if net.ParseIP(ip) == nil {
		t.Fatalf("docker inspect %s: no IP on %s: %q", ctr, network, ip)
	}
	return ip
}

// ping pings addr once from inside a container.
func (e engine) ping(ctr, addr string) error {
	out, err := e.docker("exec", ctr, "ping", "-c", "1", "-W", "3", addr)
	if err != nil {
		return fmt.Errorf("ping %s from %s: %v\n%s", addr, ctr, err, out)
	}
	return nil
}

// runIn runs a command in dir and returns its combined output.
func runIn(ctx context.Context, dir, name string, args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	err := cmd.Run()
	return out.String(), err
}
