// Command docker-cni is the daemon that lets Docker use CNI networks: it
// serves Docker's remote network and IPAM driver protocols on one unix
// socket and runs the node's CNI plugins. This file is wiring only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/hostfw"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/server"
	"github.com/docker-cni/docker-cni/state"
)

const usage = `usage: docker-cni <command> [flags]

commands:
  serve     run the daemon (network driver and IPAM driver "cni")
  ls        list endpoints: CNI attachment, addresses, published ports
  version   print the version
`

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "docker-cni:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "ls":
		return ls(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "docker-cni", version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

type serveFlags struct {
	socket, confDir, binDir, stateDir, cacheDir, runDir, logLevel, defaultPools, dockerHosts string
	reconcileEvery                                                                           time.Duration
	dockerUserRules                                                                          bool
	k8sNamespace                                                                             string
}

func parseServe(args []string, stderr io.Writer) (serveFlags, error) {
	var f serveFlags
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.socket, "socket", "/run/docker/plugins/cni.sock", "plugin socket Docker discovers the driver by (its base name is the driver name)")
	fs.StringVar(&f.confDir, "cni-conf-dir", "/etc/cni/net.d", "CNI conf dir searched for cni.network bindings")
	fs.StringVar(&f.binDir, "cni-bin-dir", "/opt/cni/bin:/usr/lib/cni", "colon-separated CNI plugin dirs")
	fs.StringVar(&f.stateDir, "state-dir", "/var/lib/docker-cni", "state that survives restarts")
	fs.StringVar(&f.cacheDir, "cni-cache-dir", "/var/lib/docker-cni/cache", "libcni cache dir of docker-cni's own (kept apart from other runtimes' GC)")
	fs.StringVar(&f.runDir, "run-dir", "/run/docker-cni", "runtime dir (scratch netns)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.defaultPools, "default-address-pools", "10.234.0.0/16", "comma-separated IPv4 ranges carved into /24s for networks created without --subnet")
	defHost := os.Getenv("DOCKER_HOST")
	if defHost == "" {
		defHost = "unix:///var/run/docker.sock"
	}
	fs.StringVar(&f.dockerHosts, "docker-host", defHost, "comma-separated Docker engines using docker-cni, asked in the background which networks still exist")
	fs.DurationVar(&f.reconcileEvery, "reconcile-interval", time.Minute, "how often to drop networks and pools Docker removed while docker-cni was down (0: never)")
	fs.StringVar(&f.k8sNamespace, "k8s-namespace", "default", "K8S_POD_NAMESPACE passed to CNI for containers without the io.kubernetes.pod.namespace label")
	fs.BoolVar(&f.dockerUserRules, "docker-user-rules", true, "accept traffic of bound networks whose conflist has no firewall plugin in dockerd's DOCKER-USER chain")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("serve: unexpected arguments %v", fs.Args())
	}
	return f, nil
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseServe(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, stderr)
	if err != nil {
		return err
	}
	var pools []netip.Prefix
	for _, s := range strings.Split(f.defaultPools, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil || !p.Addr().Is4() {
			return fmt.Errorf("--default-address-pools: %q is not an IPv4 CIDR", s)
		}
		pools = append(pools, p.Masked())
	}
	for _, dir := range []string{f.stateDir, f.cacheDir, f.runDir, filepath.Dir(f.socket)} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	store, err := state.Open(f.stateDir)
	if err != nil {
		return err
	}
	ipamNS := filepath.Join(f.runDir, "netns", "ipam")
	if !sandbox.IsNetNS(ipamNS) {
		sandbox.Remove(ipamNS)
		if err := sandbox.Create(ipamNS); err != nil {
			return fmt.Errorf("IPAM netns: %w", err)
		}
	}
	binDirs := filepath.SplitList(f.binDir)
	runner := cnirun.New(binDirs, f.cacheDir)
	dataDir := filepath.Join(f.stateDir, "ipam")
	nd := driver.New(driver.Config{ConfDir: f.confDir, ScratchDir: filepath.Join(f.runDir, "netns"), DataDir: dataDir, DockerUserRules: f.dockerUserRules, K8sNamespace: f.k8sNamespace},
		store, runner, sandbox.Ops{}, hostfw.IPTables{}, log)
	id := ipamdriver.New(ipamdriver.Config{ConfDir: f.confDir, DataDir: dataDir, NetNS: ipamNS, DefaultPools: pools},
		store, runner, log)

	engines, err := engine.New(strings.Split(f.dockerHosts, ","))
	if err != nil {
		return err
	}
	nd.SetContainers(engines.Watch(ctx, log, nd.RecordContainer))
	if f.reconcileEvery > 0 {
		go reconcileLoop(ctx, log, nd, engines, id, f.reconcileEvery)
	}

	l, err := listenUnix(f.socket)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: server.New(nd, id, log), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Info("docker-cni serving", "version", version, "socket", f.socket, "cni_conf_dir", f.confDir,
		"cni_bin_dir", f.binDir, "state_dir", f.stateDir, "cni_cache_dir", f.cacheDir)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", f.socket, err)
	case <-ctx.Done():
	}
	// Endpoints stay as they are: containers keep their network, and the
	// next start picks up the state.
	log.Info("shutting down; live endpoints are kept")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	os.Remove(f.socket)
	return err
}

// reconcileLoop drops, now and then, what Docker removed without telling
// docker-cni.
func reconcileLoop(ctx context.Context, log *slog.Logger, nd *driver.Driver, engines *engine.Engines, pools driver.PoolReleaser, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := nd.EnsureAll(ctx); err != nil {
			log.Error("restore host firewall rules", "err", err)
		}
		if err := nd.Reconcile(ctx, engines, pools, reconcileMinAge); err != nil {
			log.Error("reconcile with Docker", "hosts", engines.Hosts(), "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcileMinAge keeps the reconciler off networks still being created.
const reconcileMinAge = 30 * time.Second

// listenUnix listens on path, replacing a stale socket file but refusing to
// steal one a live daemon still serves.
func listenUnix(path string) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("another process serves %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
