// Package overlay runs a real flannel overlay for end-to-end tests:
// Debian's etcd holding flannel's network config and the nodes' leases,
// and flanneld (built by test/engines/flannel.sh) with its vxlan backend on
// each node, on the host or in a node of package node. It starts and stops
// those daemons and removes what flanneld leaves on the host; it makes no
// network of its own (package node does) and knows nothing of Docker.
//
// It is test infrastructure and needs root. etcd listens on addresses and
// ports the caller gives (loopback, a node link's host end); flanneld
// writes only under the dirs the caller gives, and its vxlan link and
// iptables chains, which CleanHost removes.
package overlay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Etcd is one etcd member serving clients on plain HTTP.
type Etcd struct {
	// Dir holds its data (Dir/data) and log (Dir/etcd.log).
	Dir string
	// ClientURLs are where it serves clients, one per address given.
	ClientURLs []string
	// PIDFile, if set, records its pid while it runs (for StopStale after
	// a killed run).
	PIDFile string
	peerURL string
	proc    *proc
	log     *os.File
}

// StartEtcd starts a one-member etcd with its data under dir, serving
// clients on each of addrs at clientPort and its peer port on loopback at
// peerPort, and waits until it is healthy. pidFile is as Etcd.PIDFile.
func StartEtcd(ctx context.Context, dir, pidFile string, addrs []netip.Addr, clientPort, peerPort uint16) (*Etcd, error) {
	if len(addrs) == 0 {
		return nil, errors.New("start etcd: no address to serve clients on")
	}
	e := &Etcd{Dir: dir, PIDFile: pidFile, peerURL: fmt.Sprintf("http://127.0.0.1:%d", peerPort)}
	for _, a := range addrs {
		e.ClientURLs = append(e.ClientURLs, fmt.Sprintf("http://%s", netip.AddrPortFrom(a, clientPort)))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("start etcd: %w", err)
	}
	return e, e.Start(ctx)
}

// Start starts etcd (again, on the same data) and waits until it is
// healthy.
func (e *Etcd) Start(ctx context.Context) error {
	if e.proc != nil {
		return errors.New("start etcd: it runs already")
	}
	log, err := os.OpenFile(filepath.Join(e.Dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	cmd := exec.Command("etcd", etcdArgs(e.Dir, e.ClientURLs, e.peerURL)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := startProc(cmd)
	if err != nil {
		log.Close()
		return fmt.Errorf("start etcd: %w", err)
	}
	e.proc, e.log = p, log
	writePID(e.PIDFile, cmd)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := e.ctl(ctx, "endpoint", "health")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.Stop()
			return fmt.Errorf("start etcd: not healthy within 20s: %w (log: %s)", err, log.Name())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// etcdArgs are the flags of a one-member etcd. Pure.
func etcdArgs(dir string, clientURLs []string, peerURL string) []string {
	urls := strings.Join(clientURLs, ",")
	return []string{
		"--name", "e2efl",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", urls,
		"--advertise-client-urls", urls,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2efl=" + peerURL,
		"--logger", "zap",
	}
}

// Stop stops etcd (SIGTERM, then SIGKILL after 10s); its data stays. Safe
// to repeat.
func (e *Etcd) Stop() error {
	if e == nil || e.proc == nil {
		return nil
	}
	err := e.proc.stop(10 * time.Second)
	removePID(e.PIDFile)
	e.log.Close()
	e.proc, e.log = nil, nil
	if err != nil {
		return fmt.Errorf("stop etcd: %w", err)
	}
	return nil
}

// Put sets key to value.
func (e *Etcd) Put(ctx context.Context, key, value string) error {
	_, err := e.ctl(ctx, "put", key, value)
	return err
}

// Del deletes key.
func (e *Etcd) Del(ctx context.Context, key string) error {
	_, err := e.ctl(ctx, "del", key)
	return err
}

// Get is every key under prefix with its value.
func (e *Etcd) Get(ctx context.Context, prefix string) (map[string]string, error) {
	out, err := e.ctl(ctx, "get", "--prefix", "-w", "json", prefix)
	if err != nil {
		return nil, err
	}
	return parseGet([]byte(out))
}

// parseGet parses `etcdctl get -w json` output (keys and values in
// base64). Pure.
func parseGet(out []byte) (map[string]string, error) {
	var resp struct {
		KVs []struct{ Key, Value []byte } `json:"kvs"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("etcdctl get: %w: %s", err, out)
	}
	kv := map[string]string{}
	for _, p := range resp.KVs {
		kv[string(p.Key)] = string(p.Value)
	}
	return kv, nil
}

// ctl runs etcdctl against the first client URL.
func (e *Etcd) ctl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "etcdctl", append([]string{"--endpoints", e.ClientURLs[0]}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "ETCDCTL_API=3"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("etcdctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// proc is a started daemon, waited for by one goroutine.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop sends SIGTERM and waits up to grace, then kills the process. A
// process that exited already is fine.
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("pid %d did not stop within %v of SIGTERM: killed", p.cmd.Process.Pid, grace)
	}
}

// writePID records cmd's pid in file ("": nowhere); best effort.
func writePID(file string, cmd *exec.Cmd) {
	if file == "" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err == nil {
		os.WriteFile(file, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	}
}

func removePID(file string) {
	if file != "" {
		os.Remove(file)
	}
}

// StopStale stops what a killed run left: the process whose pid file
// names, if it still runs and its name (/proc/<pid>/comm) is comm
// (SIGTERM, SIGKILL after 30s). It reports the pid it stopped (0: none)
// and removes the file.
func StopStale(file, comm string) (int, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer os.Remove(file)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, nil
	}
	if name, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || strings.TrimSpace(string(name)) != comm {
		return 0, nil
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for i := 0; i < 300; i++ {
		if err := syscall.Kill(pid, 0); err != nil {
			return pid, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return pid, fmt.Errorf("stop stale %s (pid %d): %w", comm, pid, err)
	}
	return pid, nil
}
