// Command docker-cni is the daemon that lets Docker use CNI networks: it
// serves Docker's remote network and IPAM driver protocols on one unix
// socket and runs the node's CNI plugins. This file is wiring only.
package main

import (
	"context"
	"errors"
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

	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/hostfw"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/metrics"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/sandbox"
	"github.com/docker-cni/docker-cni/server"
	"github.com/docker-cni/docker-cni/state"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "docker-cni:", oneLine(err))
		os.Exit(1)
	}
}

// oneLine is err's message on one line: an error joined of several (and a
// plugin's multi-line message) reads as one, "; "-separated.
func oneLine(err error) string {
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

type serveFlags struct {
	socket, confDir, binDir, stateDir, cacheDir, runDir, logLevel, defaultPools, dockerHosts string
	reconcileEvery, cniTimeout, checkEvery                                                   time.Duration
	dockerUserRules, restartContainers                                                       bool
	k8sNamespace                                                                             string
	logFormat                                                                                string
	metricsAddress                                                                           string
}

// serveCommand is `docker-cni serve`; it runs serve with the flags parsed.
func serveCommand(serve func(context.Context, serveFlags, io.Writer) error) *cobra.Command {
	var f serveFlags
	var envErr error
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: Docker's network driver and IPAM driver \"cni\"",
		Long: `Run the daemon. It serves Docker's remote network driver and remote IPAM driver
protocols on --socket (the socket's base name is the driver name), runs the
node's CNI plugins for each container, and reconciles with the engines in
--docker-host in the background. SIGTERM stops it and leaves containers'
networking as it is.

CNI_CONF_DIR, CNI_BIN_DIR and LOG_LEVEL in the environment set the defaults of
--cni-conf-dir, --cni-bin-dir and --log-level; a flag still wins.`,
		Example: `  docker-cni serve
  docker-cni serve --log-level debug --docker-host unix:///var/run/docker.sock,unix:///run/other/docker.sock
  # under systemd, flags go in /etc/default/docker-cni:
  DOCKER_CNI_OPTS="--metrics-address 127.0.0.1:9323"`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if envErr != nil {
				return envErr
			}
			return serve(cmd.Context(), f, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&f.socket, "socket", "/run/docker/plugins/cni.sock", "plugin socket Docker discovers the driver by (its base name is the driver name)")
	fs.StringVar(&f.confDir, "cni-conf-dir", defaultConfDir, "CNI conf dir searched for cni.network bindings")
	fs.StringVar(&f.binDir, "cni-bin-dir", defaultBinDir, "colon-separated CNI plugin dirs")
	fs.StringVar(&f.stateDir, "state-dir", defaultStateDir, "state that survives restarts")
	fs.StringVar(&f.cacheDir, "cni-cache-dir", "/var/lib/docker-cni/cache", "libcni cache dir of docker-cni's own (kept apart from other runtimes' GC)")
	fs.StringVar(&f.runDir, "run-dir", defaultRunDir, "runtime dir (scratch netns, admin API socket "+adminSocketName+")")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text (key=value) or json (one object a line)")
	fs.StringVar(&f.metricsAddress, "metrics-address", "", "also serve /metrics (only) over TCP on this address, e.g. 127.0.0.1:9323, for Prometheus (\"\": the admin socket only)")
	fs.StringVar(&f.defaultPools, "default-address-pools", "10.234.0.0/16", "comma-separated IPv4 ranges carved into /24s for networks created without --subnet")
	fs.StringVar(&f.dockerHosts, "docker-host", envOr("DOCKER_HOST", defaultDockerHost), "comma-separated Docker engines using docker-cni, asked in the background which networks still exist")
	fs.DurationVar(&f.cniTimeout, "cni-timeout", cnirun.DefaultTimeout, "deadline of each CNI plugin run (a chain's ADD or DEL); keep it below Docker's 30 s")
	fs.DurationVar(&f.reconcileEvery, "reconcile-interval", time.Minute, "how often to drop networks and pools Docker removed while docker-cni was down (0: never)")
	fs.DurationVar(&f.checkEvery, "cni-check-interval", 5*time.Minute, "how often reconcile passes run CNI CHECK on each live container whose conflist has it (0.4.0 and later); docker-cni gc checks them all (0: never)")
	fs.StringVar(&f.k8sNamespace, "k8s-namespace", "default", "K8S_POD_NAMESPACE passed to CNI for containers without the io.kubernetes.pod.namespace label")
	fs.BoolVar(&f.restartContainers, "restart-containers", true, "start restart-policy containers the engines gave up on because docker-cni was not up yet (boot order)")
	fs.BoolVar(&f.dockerUserRules, "docker-user-rules", true, "accept traffic of bound networks whose conflist has no firewall plugin in dockerd's DOCKER-USER chain")
	completeFlagValues(cmd, "log-level", "debug", "info", "warn", "error")
	completeFlagValues(cmd, "log-format", "text", "json")
	for _, d := range []string{"cni-conf-dir", "state-dir", "cni-cache-dir", "run-dir"} {
		cmd.MarkFlagDirname(d)
	}
	envErr = defaultsFromEnv(fs)
	return cmd
}

func serve(ctx context.Context, f serveFlags, stderr io.Writer) error {
	log, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		return err
	}
	defaultPools, err := parsePools(f.defaultPools)
	if err != nil {
		return err
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
	defer store.Close()
	reportOpen(log, store)
	if n := store.Imported(); n > 0 {
		log.Info("imported the previous release's JSON state into the state database", "records", n, "state_dir", f.stateDir)
	}
	dm, err := wire(f, store, defaultPools, log)
	if err != nil {
		return err
	}
	dm.recoverAtStart(ctx)
	dm.startRebuilder(ctx, store.Fresh())
	dm.nd.SetContainers(dm.engines.Watch(ctx, log, dm.nd.RecordContainer))
	if f.reconcileEvery > 0 {
		go dm.reconcileLoop(ctx, f.reconcileEvery)
	}
	stopAdmin, err := serveAdmin(filepath.Join(f.runDir, adminSocketName), dm.adminHandler(ctx, store, f))
	if err != nil {
		return err
	}
	defer stopAdmin()
	stopMetrics, err := serveMetrics(f.metricsAddress, dm.metrics, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	log.Info("docker-cni serving", "version", version, "socket", f.socket, "cni_conf_dir", f.confDir,
		"cni_bin_dir", f.binDir, "state_dir", f.stateDir, "cni_cache_dir", f.cacheDir)
	return servePlugin(ctx, f.socket, server.New(dm.nd, dm.ipam, log, server.WithObserver(dm.metrics)), log)
}

func parsePools(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, c := range strings.Split(s, ",") {
		p, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("--default-address-pools: %q is not an IPv4 CIDR", c)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// wire builds the two drivers over the store, the CNI runner and the host.
func wire(f serveFlags, store *state.Store, defaultPools []netip.Prefix, log *slog.Logger) (*daemon, error) {
	ipamNS := filepath.Join(f.runDir, "netns", driver.ScratchIPAM)
	if !sandbox.IsNetNS(ipamNS) {
		sandbox.Remove(ipamNS)
		if err := sandbox.Create(ipamNS); err != nil {
			return nil, fmt.Errorf("IPAM netns: %w", err)
		}
	}
	runner := cnirun.New(filepath.SplitList(f.binDir), f.cacheDir)
	runner.Timeout = f.cniTimeout
	m := metrics.New(store, version)
	runner.Observer, runner.Log = m, log
	dataDir := filepath.Join(f.stateDir, "ipam")
	// Docker's addresses are reserved and released in process where the
	// IPAM plugin is host-local: no exec on the container start path.
	instance, err := store.Instance(state.DirInstance(f.stateDir))
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	authority := pools.New(pools.Config{ConfDir: f.confDir, DataDir: dataDir, NetNS: ipamNS, DefaultPools: defaultPools, Counter: m, Instance: instance,
		HostAddresses: sandbox.HostAddresses},
		store, cnirun.HostLocal{Exec: runner}, log)
	nd := driver.New(driver.Config{ConfDir: f.confDir, ScratchDir: filepath.Join(f.runDir, "netns"), DataDir: dataDir, DockerUserRules: f.dockerUserRules, K8sNamespace: f.k8sNamespace, Instance: instance},
		driver.Deps{Store: store, Pools: authority, CNI: runner, NS: sandbox.Ops{}, FW: hostfw.New(), Log: log, Counter: m,
			Later: func(f func()) { go f() }, Cache: runner})
	engines, err := engine.New(strings.Split(f.dockerHosts, ","))
	if err != nil {
		return nil, err
	}
	return &daemon{nd: nd, ipam: ipamdriver.New(authority), pools: authority, engines: engines, log: log,
		driverName: strings.TrimSuffix(filepath.Base(f.socket), ".sock"), restart: f.restartContainers, metrics: m,
		checkEvery: f.checkEvery}, nil
}

// serveAdmin serves the admin API on its own socket (0600) until the
// returned stop is called.
func serveAdmin(path string, h http.Handler) (stop func(), err error) {
	l, err := listenUnix(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return func() {
		srv.Close()
		os.Remove(path)
	}, nil
}

// servePlugin serves Docker's plugin protocol on socket until ctx ends.
// Endpoints stay as they are when it stops: containers keep their network,
// and the next start picks up the state.
func servePlugin(ctx context.Context, socket string, h http.Handler, log *slog.Logger) error {
	l, inherited, err := pluginListener(socket)
	if err != nil {
		return err
	}
	if inherited {
		log.Info("serving the plugin socket systemd passed (socket activation)", "socket", socket)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	notify(log, sdReady)
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", socket, err)
	case <-ctx.Done():
	}
	notify(log, sdStopping)
	log.Info("shutting down; live endpoints are kept")
	sctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if !inherited { // a passed socket is systemd's to remove
		os.Remove(socket)
	}
	return err
}

// listenUnix listens on path, replacing a stale socket file but refusing to
// steal one a live daemon still serves.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
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
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}
