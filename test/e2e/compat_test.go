package e2e

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/docker-cni/docker-cni/test/compat"
	"github.com/docker-cni/docker-cni/test/cri"
)

// TestCompat runs the compatibility matrix's scenario (test/compat says
// what a cell is; compat_cell_test.go what runs on it): the CI slice on
// every run, the whole matrix with COMPAT=full (`make compat`), which also
// writes docs/compatibility.md (COMPAT_REPORT=FILE writes it elsewhere, and
// for the slice too). A red cell fails the test; a grey one (cannot work
// here, and why) does not.
func TestCompat(t *testing.T) {
	full := os.Getenv("COMPAT") == "full"
	cells := compat.CISlice()
	if full {
		cells = compat.Full()
	}
	h := newCompatHarness(t)
	var results []compat.Result
	for i, c := range cells {
		t.Run(strings.ReplaceAll(c.Key(), "/", "+"), func(t *testing.T) {
			began := time.Now()
			res := h.runCell(t, i, c)
			res.Took = time.Since(began).Round(100 * time.Millisecond)
			results = append(results, res)
			switch res.Status {
			case compat.Fail:
				t.Errorf("%s: %s", c.Key(), res.Reason)
			default:
				t.Logf("%s: %s %s %v (%v)", c.Key(), res.Status, res.Reason, res.Notes, res.Took)
			}
		})
	}
	report := os.Getenv("COMPAT_REPORT")
	if report == "" && full {
		report = filepath.Join(s.repo, "docs", "compatibility.md")
	}
	if report == "" {
		return
	}
	md := compat.Render(compat.Report{Generated: time.Now(), Versions: h.versions(), Results: results})
	if err := os.WriteFile(report, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", report)
}

// compatEngine is an engine of the matrix: one of the suite's, or a current
// engine in a network namespace of its own (netns set).
type compatEngine struct {
	engine
	// netns is the engine's network namespace ("": the host's).
	netns string
	// err says why it could not be had.
	err error
}

// compatHarness starts what the cells need once, on first use, and stops
// what it started when TestCompat ends.
type compatHarness struct {
	top       *testing.T
	upstream  string // the upstream plugin set's dir
	upErr     error
	ctrd2     string // containerd 2.x's dir
	ctrd2Err  error
	engines   map[string]*compatEngine
	daemons   map[string]*daemon
	daemonErr map[string]error
}

func newCompatHarness(t *testing.T) *compatHarness {
	h := &compatHarness{top: t, engines: map[string]*compatEngine{}, daemons: map[string]*daemon{}, daemonErr: map[string]error{}}
	out, err := run(t.Context(), "bash", filepath.Join(s.repo, "test", "compat", "plugins.sh"))
	if err != nil {
		h.upErr = fmt.Errorf("build the upstream CNI plugins (test/compat/plugins.sh): %v: %s", err, compat.Short(lastLines(out, 3)))
	} else {
		h.upstream = strings.TrimSpace(lastLines(out, 1))
	}
	return h
}

// lastLines is the last n lines of out.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// pluginDir is the plugin set's dir (the daemon's and the runtime's).
func (h *compatHarness) pluginDir(set string) (string, error) {
	if set == compat.PluginsUpstream {
		return h.upstream, h.upErr
	}
	return systemPlugins, nil
}

// containerd2 builds containerd 2.x once.
func (h *compatHarness) containerd2() (string, error) {
	if h.ctrd2 == "" && h.ctrd2Err == nil {
		out, err := run(h.top.Context(), "bash", filepath.Join(s.repo, "test", "compat", "containerd2.sh"))
		if err != nil {
			h.ctrd2Err = fmt.Errorf("build containerd 2.x (test/compat/containerd2.sh): %v: %s", err, compat.Short(lastLines(out, 3)))
		} else {
			h.ctrd2 = strings.TrimSpace(lastLines(out, 1))
		}
	}
	return h.ctrd2, h.ctrd2Err
}

// engine finds or starts the cell's engine.
func (h *compatHarness) engine(name string) *compatEngine {
	if e, ok := h.engines[name]; ok {
		return e
	}
	e := &compatEngine{}
	h.engines[name] = e
	switch name {
	case compat.EngineDebian, compat.EngineCurrent:
		i := slices.IndexFunc(s.engines, func(se engine) bool { return se.name == name })
		if i < 0 {
			e.err = fmt.Errorf("engine %s is not in this run (E2E_ENGINES)", name)
			return e
		}
		e.engine = s.engines[i]
	case compat.EngineCurrentIPTables, compat.EngineCurrentNFTables:
		backend := strings.TrimPrefix(name, "current-")
		script := filepath.Join(s.repo, "test", "compat", "engine.sh")
		out, err := run(h.top.Context(), "bash", script, "start", backend)
		if err != nil {
			e.err = fmt.Errorf("the current engine with --firewall-backend=%s did not start: %s", backend, compat.Short(lastLines(out, 1)))
			h.top.Logf("%s:\n%s", name, out)
			run(context.Background(), "bash", script, "stop", backend)
			return e
		}
		h.top.Cleanup(func() {
			if out, err := run(context.Background(), "bash", script, "stop", backend); err != nil {
				h.top.Errorf("stop engine %s: %v\n%s", name, err, out)
			}
		})
		host, _ := run(h.top.Context(), "bash", script, "host", backend)
		netns, _ := run(h.top.Context(), "bash", script, "netns", backend)
		e.engine = engine{name: name, host: strings.TrimSpace(host), joinMode: "handover"}
		e.netns = strings.TrimSpace(netns)
	default:
		e.err = fmt.Errorf("unknown engine %q", name)
	}
	return e
}

// daemon finds or starts the docker-cni daemon serving engine e with the
// plugin set: the suite's own for its engines with Debian's plugins, else
// (or when own is set) one of its own: its own driver name, state, run dir
// and netns, all removed when TestCompat ends, whatever a cell left there.
func (h *compatHarness) daemon(e *compatEngine, set string, own bool) (*daemon, error) {
	if set == compat.PluginsDebian && e.netns == "" && !own {
		return s.d, nil
	}
	key := fmt.Sprintf("%s/%s/%v", e.name, set, own)
	if d, ok := h.daemons[key]; ok || h.daemonErr[key] != nil {
		return d, h.daemonErr[key]
	}
	d, err := h.startDaemon(e, set, own)
	h.daemons[key], h.daemonErr[key] = d, err
	return d, err
}

func (h *compatHarness) startDaemon(e *compatEngine, set string, own bool) (*daemon, error) {
	bins, err := h.pluginDir(set)
	if err != nil {
		return nil, err
	}
	driver := fmt.Sprintf("cmp%s%s", strings.ReplaceAll(strings.TrimPrefix(e.name, "current"), "-", ""), set[:3])
	if own {
		driver += "own"
	}
	dir, err := os.MkdirTemp("", "docker-cni-compat-")
	if err != nil {
		return nil, err
	}
	d := &daemon{
		bin:       s.d.bin,
		socket:    filepath.Join("/run/docker/plugins", driver+".sock"),
		dir:       dir,
		confDir:   filepath.Join(dir, "net.d"),
		stateDir:  filepath.Join(dir, "state"),
		runDir:    filepath.Join("/run/docker-cni-compat", "daemon-"+driver),
		pluginDir: bins,
		hosts:     []string{e.host},
	}
	if err := os.MkdirAll(d.confDir, 0o755); err != nil {
		return nil, err
	}
	if d.log, err = os.Create(filepath.Join(dir, "daemon.log")); err != nil {
		return nil, err
	}
	args := []string{d.bin, "serve",
		"--socket", d.socket,
		"--cni-conf-dir", d.confDir,
		"--cni-bin-dir", d.pluginDir,
		"--state-dir", d.stateDir,
		"--cni-cache-dir", filepath.Join(d.stateDir, "cache"),
		"--run-dir", d.runDir,
		"--log-level", "debug",
		"--docker-host", e.host,
		"--reconcile-interval", "5s",
		"--cni-timeout", "10s"}
	if e.netns != "" {
		args = append([]string{"nsenter", "--net=" + e.netns}, args...)
	}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-cni for %s: %w", driver, err)
	}
	h.top.Cleanup(func() {
		if h.top.Failed() {
			d.dumpLog(os.Stderr)
		}
		d.stop()
		// docker-cni leaves its IPAM namespace mounted for its next start.
		if err := unmountUnder(d.runDir); err != nil {
			h.top.Errorf("clean up %s: %v", d.runDir, err)
		}
		os.RemoveAll(d.runDir)
		os.Remove(filepath.Dir(d.runDir)) // when empty
		os.RemoveAll(d.dir)
	})
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.DialTimeout("unix", d.socket, time.Second); err == nil {
			c.Close()
			e.sweepDriver(driver)
			return d, nil
		}
	}
	return nil, fmt.Errorf("docker-cni %s did not serve %s within 15s (log %s)", driver, d.socket, d.log.Name())
}

// versions is the report's component list.
func (h *compatHarness) versions() [][2]string {
	ctx := h.top.Context()
	first := func(name string, args ...string) string {
		out, err := run(ctx, name, args...)
		if err != nil {
			return "not found"
		}
		return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	out := [][2]string{{"docker-cni", first("git", "-C", s.repo, "describe", "--always", "--dirty")}}
	for _, name := range []string{compat.EngineDebian, compat.EngineCurrent, compat.EngineCurrentIPTables, compat.EngineCurrentNFTables} {
		e, ok := h.engines[name]
		if !ok || e.err != nil {
			continue
		}
		v, _ := e.docker("version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})")
		out = append(out, [2]string{"engine " + name, v})
	}
	deb, _ := run(ctx, "dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins")
	out = append(out, [2]string{"plugins debian", "containernetworking-plugins " + deb + " (" + systemPlugins + ")"})
	if h.upstream != "" {
		out = append(out, [2]string{"plugins upstream", first(filepath.Join(h.upstream, "bridge"), "--version") + " (" + h.upstream + ")"})
	}
	out = append(out, [2]string{"CRI runtime containerd-1.6", first("/usr/bin/containerd", "--version") + ", " + first("/usr/sbin/runc", "--version")})
	if h.ctrd2 != "" {
		out = append(out, [2]string{"CRI runtime containerd-2", first(filepath.Join(h.ctrd2, "containerd"), "--version") + ", " + first("/usr/sbin/runc", "--version")})
	}
	out = append(out,
		[2]string{"docker-compose", first("docker-compose", "version", "--short")},
		[2]string{"iptables", first("iptables", "--version")},
		[2]string{"nft", first("nft", "--version")},
		[2]string{"kernel", first("uname", "-r")},
		[2]string{"Go", first("go", "version")})
	return out
}

// inNetns runs a command in netns ("": here) and returns its output.
func inNetns(ctx context.Context, netns, name string, args ...string) (string, error) {
	if netns == "" {
		return run(ctx, name, args...)
	}
	return run(ctx, "nsenter", append([]string{"--net=" + netns, name}, args...)...)
}

// pluginSpeaks reports whether plugin bin answers VERSION with version
// among its supported ones, and which it supports.
func pluginSpeaks(ctx context.Context, bin, version string) (bool, []string, error) {
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"CNI_COMMAND=VERSION"}
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"cniVersion":%q}`, version))
	out, err := cmd.Output()
	if err != nil {
		return false, nil, fmt.Errorf("%s VERSION: %w", bin, err)
	}
	var v struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return false, nil, fmt.Errorf("%s VERSION: %w: %s", bin, err, out)
	}
	return slices.Contains(v.Supported, version), v.Supported, nil
}

// errCell is an outcome other than a failure, returned by a step.
type errCell struct {
	status compat.Status
	reason string
}

func (e *errCell) Error() string { return e.reason }

func cellSkip(format string, a ...any) error {
	return &errCell{status: compat.Skip, reason: fmt.Sprintf(format, a...)}
}

// outcome classifies what the scenario returned.
func outcome(err error, partial []string) (compat.Status, string) {
	var ec *errCell
	switch {
	case errors.As(err, &ec):
		return ec.status, ec.reason
	case err != nil:
		return compat.Fail, err.Error()
	case len(partial) > 0:
		return compat.Partial, strings.Join(partial, "; ")
	}
	return compat.Pass, ""
}

// unmountUnder unmounts every mount below dir, deepest first.
func unmountUnder(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	slices.Sort(mounts)
	slices.Reverse(mounts)
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// sweepDriver removes the networks of driver, and the containers on them,
// that a killed earlier run left on e: the cells' names would clash with
// them. It runs once the driver's daemon serves (Docker asks it to delete
// a network).
func (e *compatEngine) sweepDriver(driver string) {
	out, err := e.docker("network", "ls", "-q", "--no-trunc", "--filter", "driver="+driver)
	if err != nil {
		return
	}
	for _, id := range strings.Fields(out) {
		if ids, err := e.docker("ps", "-aq", "--filter", "network="+id); err == nil && ids != "" {
			e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		fmt.Fprintf(os.Stderr, "compat: removing network %.12s (driver %s) an earlier run left on %s\n", id, driver, e.name)
		e.docker("network", "rm", id)
	}
	sweepCellPortRules(e.netns)
}

// sweepCellPortRules removes the portmap rules of the cells' networks
// (their names start with "cmp-") that a killed run left: the daemon that
// could DEL them is gone with its state dir, and a cell checks that its
// host port has no rule left.
func sweepCellPortRules(netns string) {
	ipt := func(args ...string) (string, error) {
		if netns != "" {
			args = append([]string{"--net=" + netns, "iptables"}, args...)
			return run(context.Background(), "nsenter", args...)
		}
		return run(context.Background(), "iptables", args...)
	}
	out, err := ipt("-w", "5", "-t", "nat", "-S", "CNI-HOSTPORT-DNAT")
	if err != nil {
		return
	}
	for _, rule := range strings.Split(out, "\n") {
		if !strings.HasPrefix(rule, "-A CNI-HOSTPORT-DNAT ") || !strings.Contains(rule, `dnat name: \"cmp-`) {
			continue
		}
		words := cri.SplitRule(strings.TrimPrefix(rule, "-A "))
		fmt.Fprintf(os.Stderr, "compat: removing a port rule an earlier run left: %s\n", rule)
		ipt(append([]string{"-w", "5", "-t", "nat", "-D"}, words...)...)
		if chain := words[len(words)-1]; strings.HasPrefix(chain, "CNI-DN-") {
			ipt("-w", "5", "-t", "nat", "-F", chain)
			ipt("-w", "5", "-t", "nat", "-X", chain)
		}
	}
}
