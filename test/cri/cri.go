// Package cri gives tests real Kubernetes-style pods without a kubelet or a
// registry: a private containerd (started by containerd.sh beside it, never
// dockerd's) whose CRI plugin runs the CNI plugins from a conf dir the test
// chooses, driven over the CRI gRPC API as a kubelet would.
//
// It is test infrastructure and needs root. It must not pull images (the only
// image is built locally by containerd.sh), touch dockerd or its containerd,
// or leave anything behind outside the work dir once Stop returns; host
// leftovers of the CNI plugins themselves are HostSnapshot's job.
package cri

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Deadlines applied to each call when the caller's context has none sooner.
const (
	startTimeout     = 2 * time.Minute
	runPodTimeout    = 2 * time.Minute
	removePodTimeout = time.Minute
	containerTimeout = time.Minute
	stopTimeout      = 2 * time.Minute
)

// Runtime is a private containerd serving CRI on Socket. Its methods are
// safe for concurrent use.
type Runtime struct {
	// WorkDir holds containerd's config, root, state, sockets and log.
	WorkDir string
	// ConfDir is the CNI conf dir the CRI plugin loads (the first conflist
	// in it, by name).
	ConfDir string
	// Socket is the CRI (containerd gRPC) unix socket.
	Socket string
	// Image is the local busybox image used for sandboxes and containers.
	Image string
	// LogFile is containerd's log.
	LogFile string
	// Opts are the options it was started with.
	Opts StartOpts

	script       string
	cgroupParent string
	conn         *grpc.ClientConn
	rs           runtimeapi.RuntimeServiceClient

	mu   sync.Mutex
	pods map[string]string // sandbox id -> "namespace/name", for errors
	seq  atomic.Int64      // container names within pods
}

// Pod is a running pod sandbox.
type Pod struct {
	// ID is the sandbox id: the CNI container id of its network.
	ID                   string
	Name, Namespace, UID string
	// IP is the pod's primary IP as the CRI plugin reports it (from CNI ADD).
	IP string
	// NetNS is the path of the pod's network namespace (under WorkDir, not
	// /var/run/netns), from the verbose sandbox status; empty when the
	// runtime does not report it.
	NetNS string

	config *runtimeapi.PodSandboxConfig
	logDir string
}

// StartOpts are Start's defaults made explicit; the zero value is Start.
type StartOpts struct {
	// NetNS is the path of a network namespace (a bind mount, or
	// /proc/PID/ns/net) to run containerd in, as on another node: its CNI
	// plugins then make the pods' bridge, veth host ends and iptables rules
	// in that namespace. Empty: the caller's namespace. The pods' own
	// namespaces are mounted under WorkDir either way.
	NetNS string
	// CNIBinDir is where the CRI plugin finds the CNI plugins; empty:
	// /usr/lib/cni.
	CNIBinDir string
	// Containerd, Ctr and Runc are the binaries to run; empty: Debian's
	// (containerd 1.6). A containerd 2.x (test/compat/containerd2.sh builds
	// one) gets its own config format and its own shim, found beside it.
	Containerd, Ctr, Runc string
}

// env is the environment containerd.sh reads for o; empty values are
// passed too, so that the test's own environment never leaks in.
func (o StartOpts) env() []string {
	return []string{"CRI_NETNS=" + o.NetNS, "CRI_CNI_BIN_DIR=" + o.CNIBinDir,
		"CRI_CONTAINERD=" + o.Containerd, "CRI_CTR=" + o.Ctr, "CRI_RUNC=" + o.Runc}
}

// Start starts (or finds running) the containerd for workDir with CNI confs
// from confDir, and connects to its CRI service.
func Start(ctx context.Context, workDir, confDir string) (*Runtime, error) {
	return StartWith(ctx, workDir, confDir, StartOpts{})
}

// StartWith is Start with opts: e.g. a containerd running in a node's
// netns (see test/node).
func StartWith(ctx context.Context, workDir, confDir string, opts StartOpts) (*Runtime, error) {
	ctx, cancel := withDeadline(ctx, startTimeout)
	defer cancel()
	workDir, err := filepath.Abs(workDir)
	if err != nil {
		return nil, fmt.Errorf("start containerd: %w", err)
	}
	r := &Runtime{
		WorkDir:      workDir,
		ConfDir:      confDir,
		LogFile:      filepath.Join(workDir, "containerd.log"),
		Opts:         opts,
		script:       scriptPath(),
		cgroupParent: cgroupParentFor(workDir),
		pods:         map[string]string{},
	}
	if r.Socket, err = r.runScript(ctx, "sock", workDir); err != nil {
		return nil, err
	}
	if r.Image, err = r.runScript(ctx, "image"); err != nil {
		return nil, err
	}
	if _, err := r.runScript(ctx, "start", workDir, confDir); err != nil {
		return nil, err
	}
	if err := r.connect(ctx); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

func (r *Runtime) connect(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+r.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to CRI on %s: %w", r.Socket, err)
	}
	r.conn = conn
	r.rs = runtimeapi.NewRuntimeServiceClient(conn)
	for {
		_, err = r.rs.Version(ctx, &runtimeapi.VersionRequest{})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRI version on %s: %w (log: %s)", r.Socket, err, r.LogFile)
		case <-time.After(100 * time.Millisecond):
		}
	}
	is := runtimeapi.NewImageServiceClient(conn)
	st, err := is.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: r.Image}})
	if err != nil {
		return fmt.Errorf("CRI image status of %s on %s: %w", r.Image, r.Socket, err)
	}
	if st.GetImage() == nil {
		return fmt.Errorf("image %s not found by the CRI plugin on %s after containerd.sh imported it", r.Image, r.Socket)
	}
	return nil
}

// RunPod runs a pod sandbox (CNI ADD happens here) and returns it with its
// IP and netns. On failure nothing is left behind.
func (r *Runtime) RunPod(ctx context.Context, name, namespace string, labels map[string]string) (pod *Pod, retErr error) {
	ctx, cancel := withDeadline(ctx, runPodTimeout)
	defer cancel()
	uid, err := newUID()
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s: %w", namespace, name, err)
	}
	logDir := filepath.Join(r.WorkDir, "pods", namespace+"_"+name+"_"+uid)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("run pod %s/%s: %w", namespace, name, err)
	}
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: namespace, Uid: uid},
		Hostname:     name,
		LogDirectory: logDir,
		Labels:       labels,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: r.cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	resp, err := r.rs.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s: run sandbox: %w", namespace, name, err)
	}
	pod = &Pod{ID: resp.PodSandboxId, Name: name, Namespace: namespace, UID: uid, config: cfg, logDir: logDir}
	r.mu.Lock()
	r.pods[pod.ID] = namespace + "/" + name
	r.mu.Unlock()
	defer func() {
		if retErr != nil {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), removePodTimeout)
			defer rcancel()
			if err := r.RemovePod(rctx, pod.ID); err != nil {
				retErr = errors.Join(retErr, err)
			}
		}
	}()
	st, err := r.rs.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod.ID, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("run pod %s/%s: sandbox %.12s status: %w", namespace, name, pod.ID, err)
	}
	if s := st.GetStatus().GetState(); s != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, fmt.Errorf("run pod %s/%s: sandbox %.12s is %v, want ready", namespace, name, pod.ID, s)
	}
	pod.IP = st.GetStatus().GetNetwork().GetIp()
	if pod.IP == "" {
		return nil, fmt.Errorf("run pod %s/%s: sandbox %.12s has no IP (did CNI ADD return one?)", namespace, name, pod.ID)
	}
	pod.NetNS = netnsFromInfo(st.GetInfo()["info"])
	return pod, nil
}

// netnsFromInfo is the network namespace path in containerd's verbose
// sandbox info (its runtimeSpec), or "" when it is not there.
func netnsFromInfo(info string) string {
	var v struct {
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string }
			}
		} `json:"runtimeSpec"`
	}
	if json.Unmarshal([]byte(info), &v) != nil {
		return ""
	}
	for _, ns := range v.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path
		}
	}
	return ""
}

// RunContainer starts a container in pod from the runtime's busybox image,
// running cmd (e.g. {"/bin/busybox", "httpd", "-f", "-p", "8080"}); it
// shares the pod's network namespace and hostname. It returns the container
// id. The container goes away with the pod. A command that fails at once
// may still count as running when RunContainer returns: poll the service.
func (r *Runtime) RunContainer(ctx context.Context, pod *Pod, cmd []string) (string, error) {
	ctx, cancel := withDeadline(ctx, containerTimeout)
	defer cancel()
	name := fmt.Sprintf("c%d", r.seq.Add(1))
	what := fmt.Sprintf("run container %s in pod %s/%s", name, pod.Namespace, pod.Name)
	if len(cmd) == 0 {
		return "", fmt.Errorf("%s: empty command", what)
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: r.Image},
		Command:  cmd,
		LogPath:  name + ".log",
		Linux:    &runtimeapi.LinuxContainerConfig{},
	}
	cr, err := r.rs.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.ID, Config: cfg, SandboxConfig: pod.config,
	})
	if err != nil {
		return "", fmt.Errorf("%s: create: %w", what, err)
	}
	id := cr.ContainerId
	if _, err := r.rs.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return "", fmt.Errorf("%s: start %.12s: %w", what, id, err)
	}
	st, err := r.rs.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		return "", fmt.Errorf("%s: status of %.12s: %w", what, id, err)
	}
	if s := st.GetStatus(); s.GetState() != runtimeapi.ContainerState_CONTAINER_RUNNING {
		out, _ := os.ReadFile(filepath.Join(pod.logDir, cfg.LogPath))
		return "", fmt.Errorf("%s: %.12s is %v (exit code %d, %s); its log:\n%s",
			what, id, s.GetState(), s.GetExitCode(), s.GetReason(), out)
	}
	return id, nil
}

// RemovePod stops the pod sandbox (CNI DEL happens here) and removes it
// with its containers. Removing a pod that is already gone succeeds.
func (r *Runtime) RemovePod(ctx context.Context, id string) error {
	ctx, cancel := withDeadline(ctx, removePodTimeout)
	defer cancel()
	r.mu.Lock()
	what := r.pods[id]
	r.mu.Unlock()
	if what == "" {
		what = fmt.Sprintf("%.12s", id)
	} else {
		what = fmt.Sprintf("%s (%.12s)", what, id)
	}
	if _, err := r.rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("remove pod %s: stop sandbox: %w", what, err)
	}
	if _, err := r.rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && status.Code(err) != codes.NotFound {
		return fmt.Errorf("remove pod %s: remove sandbox: %w", what, err)
	}
	r.mu.Lock()
	delete(r.pods, id)
	r.mu.Unlock()
	return nil
}

// Stop removes the pods still there (so their CNI DEL runs), stops the
// containerd (containerd.sh stop: tasks, shims, mounts under WorkDir) and
// removes the pods' cgroup parent. It is safe to call more than once.
func (r *Runtime) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	var errs []error
	if r.rs != nil {
		resp, err := r.rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			errs = append(errs, fmt.Errorf("stop runtime: list pods: %w", err))
		}
		for _, p := range resp.GetItems() {
			if err := r.RemovePod(ctx, p.Id); err != nil {
				errs = append(errs, fmt.Errorf("stop runtime: %w", err))
			}
		}
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn, r.rs = nil, nil
	}
	if _, err := r.runScript(ctx, "stop", r.WorkDir); err != nil {
		errs = append(errs, err)
	}
	if err := removeCgroups(r.cgroupParent); err != nil {
		errs = append(errs, fmt.Errorf("stop runtime: %w", err))
	}
	return errors.Join(errs...)
}

// runScript runs containerd.sh and returns its trimmed stdout; the error
// carries its stderr (which has containerd's log tail on a failed start).
func (r *Runtime) runScript(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{r.script}, args...)...)
	cmd.Env = append(os.Environ(), r.Opts.env()...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("containerd.sh %s: %w\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return strings.TrimSpace(stdout.String()), nil
}

// scriptPath is containerd.sh next to this file.
func scriptPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "containerd.sh")
}

// cgroupParentFor is a cgroupfs parent of our own for workDir's pods, so
// that they never land among another runtime's cgroups.
func cgroupParentFor(workDir string) string {
	sum := sha256.Sum256([]byte(workDir))
	return "/cri-test-" + hex.EncodeToString(sum[:6])
}

// removeCgroups removes the (empty) cgroup dirs named parent in every
// mounted hierarchy, deepest first. A missing dir is fine.
func removeCgroups(parent string) error {
	roots, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	if fi, err := os.Stat("/sys/fs/cgroup" + parent); err == nil && fi.IsDir() {
		roots = append(roots, "/sys/fs/cgroup"+parent)
	}
	var errs []error
	for _, root := range roots {
		var dirs []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// withDeadline adds a timeout of d unless ctx already ends sooner.
func withDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// newUID is a random pod UID in the usual 8-4-4-4-12 form.
func newUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

// Restart kills containerd (SIGKILL, as a crash would) and starts it again
// on the same state; running pods keep running under their shims, as on a
// node whose containerd restarts.
func (r *Runtime) Restart(ctx context.Context) error {
	ctx, cancel := withDeadline(ctx, startTimeout)
	defer cancel()
	b, err := os.ReadFile(filepath.Join(r.WorkDir, "containerd.pid"))
	if err != nil {
		return fmt.Errorf("restart containerd: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("restart containerd: pid file: %w", err)
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn, r.rs = nil, nil
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for syscall.Kill(pid, 0) == nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("restart containerd: pid %d did not exit", pid)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := r.runScript(ctx, "start", r.WorkDir, r.ConfDir); err != nil {
		return err
	}
	return r.connect(ctx)
}
