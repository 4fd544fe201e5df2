package overlay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/docker-cni/docker-cni/translate"
)

// Network is flannel's network config, as kept in etcd under
// <prefix>/config.
type Network struct {
	// Network is the cluster's pod network; each node leases a /SubnetLen
	// of it.
	Network   netip.Prefix
	SubnetLen int
	// VNI names the vxlan link flannel.<VNI> on every node; Port is the
	// vxlan UDP port (0: flannel's default, 8472).
	VNI, Port int
}

// JSON is the config's value in etcd. Pure.
func (n Network) JSON() string {
	backend := map[string]any{"Type": "vxlan", "VNI": n.VNI}
	if n.Port != 0 {
		backend["Port"] = n.Port
	}
	b, _ := json.Marshal(map[string]any{"Network": n.Network.String(), "SubnetLen": n.SubnetLen, "Backend": backend})
	return string(b)
}

// Link is the name of the vxlan link flanneld makes on each node.
func (n Network) Link() string { return fmt.Sprintf("flannel.%d", n.VNI) }

// LeaseKey is the etcd key of the lease (or reservation) of subnet under
// prefix, as flannel names it. Pure.
func LeaseKey(prefix string, subnet netip.Prefix) string {
	return path.Join(prefix, "subnets", strings.ReplaceAll(subnet.Masked().String(), "/", "-"))
}

// Flanneld is flanneld on one node, against etcd, with its vxlan backend
// and --ip-masq, as kube-flannel runs it (there with the Kubernetes API
// instead of etcd).
type Flanneld struct {
	// Bin is the flanneld binary.
	Bin string
	// Endpoints are the etcd client URLs, comma-separated; Prefix is
	// flannel's key prefix there.
	Endpoints, Prefix string
	// Iface is the link whose address is the node's public address: the
	// vxlan underlay.
	Iface string
	// SubnetFile is where it writes the node's lease (subnet.env); Log
	// its output (appended); PIDFile, if set, its pid while it runs (for
	// StopStale after a killed run).
	SubnetFile, Log, PIDFile string
	// Command makes the command line into a process on its node: nil for
	// the host, node.Node.Command for a node.
	Command func(args ...string) *exec.Cmd

	proc *proc
	log  *os.File
}

// Args are flanneld's flags. Pure.
func (f *Flanneld) Args() []string {
	return []string{
		"--etcd-endpoints", f.Endpoints,
		"--etcd-prefix", f.Prefix,
		"--iface", f.Iface,
		"--ip-masq",
		"--subnet-file", f.SubnetFile,
	}
}

// readyLine is what flanneld logs once its rules are set up and the
// subnet file written.
const readyLine = "flannel is ready"

// Start starts flanneld and waits until it is ready (its subnet file
// written, with a lease of this run).
func (f *Flanneld) Start(ctx context.Context) error {
	if f.proc != nil {
		return errors.New("start flanneld: it runs already")
	}
	log, err := os.OpenFile(f.Log, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start flanneld: %w", err)
	}
	from, err := log.Seek(0, 2)
	if err != nil {
		log.Close()
		return fmt.Errorf("start flanneld: %w", err)
	}
	command := f.Command
	if command == nil {
		command = func(args ...string) *exec.Cmd { return exec.Command(args[0], args[1:]...) }
	}
	cmd := command(append([]string{f.Bin}, f.Args()...)...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := startProc(cmd)
	if err != nil {
		log.Close()
		return fmt.Errorf("start flanneld: %w", err)
	}
	f.proc, f.log = p, log
	writePID(f.PIDFile, cmd)
	if err := f.waitReady(ctx, from, p.done); err != nil {
		f.Stop()
		return fmt.Errorf("start flanneld on %s: %w (log: %s)", f.Iface, err, f.Log)
	}
	return nil
}

func (f *Flanneld) waitReady(ctx context.Context, from int64, exited <-chan struct{}) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(f.Log)
		if err == nil && int64(len(b)) > from && bytes.Contains(b[from:], []byte(readyLine)) {
			return nil
		}
		select {
		case <-exited:
			return errors.New("it exited before it was ready")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("not ready within 30s")
		}
	}
}

// Stop stops flanneld (SIGTERM, then SIGKILL after 10s). What it set up
// stays, as with a real flanneld: the vxlan link, routes, rules and the
// subnet file (CleanHost removes the host's). Safe to repeat.
func (f *Flanneld) Stop() error {
	if f == nil || f.proc == nil {
		return nil
	}
	err := f.proc.stop(10 * time.Second)
	removePID(f.PIDFile)
	f.log.Close()
	f.proc, f.log = nil, nil
	if err != nil {
		return fmt.Errorf("stop flanneld on %s: %w", f.Iface, err)
	}
	return nil
}

// Lease is the node's lease: its subnet file as flannel's CNI plugin reads
// it.
func (f *Flanneld) Lease() (translate.SubnetEnv, error) {
	b, err := os.ReadFile(f.SubnetFile)
	if err != nil {
		return translate.SubnetEnv{}, fmt.Errorf("flanneld lease: %w", err)
	}
	env, err := translate.ParseSubnetEnv(b)
	if err != nil {
		return translate.SubnetEnv{}, fmt.Errorf("flanneld lease in %s: %w", f.SubnetFile, err)
	}
	return env, nil
}

// Subnet is the node's IPv4 lease.
func (f *Flanneld) Subnet() (netip.Prefix, error) {
	env, err := f.Lease()
	if err != nil {
		return netip.Prefix{}, err
	}
	for _, s := range env.Subnets {
		if s.Addr().Is4() {
			return s, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("flanneld lease in %s: no IPv4 subnet", f.SubnetFile)
}

// Running reports whether the flanneld Start started still runs.
func (f *Flanneld) Running() bool {
	if f == nil || f.proc == nil {
		return false
	}
	select {
	case <-f.proc.done:
		return false
	default:
		return true
	}
}
