package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// managedPlugin is the name the managed plugin is created under on each
// engine; Docker names its drivers after it.
const managedPlugin = "docker-cni:e2e"

// TestInstallManagedPlugin: the bundle `make plugin` builds runs as a Docker
// managed plugin on each engine at once, each instance with its own state
// dir: a network of the plugin's driver, containers on it reach each other,
// and the current engine's containers are joined in handover mode, so the
// plugin sees the network namespaces the engine mounts after it started.
// A restart-policy container comes back with its network when the engine
// restarts. The suite's daemon is stopped meanwhile: every docker-cni on a host
// removes dcni links its own records do not know (docs/install.md, Several
// docker-cni on one node).
func TestInstallManagedPlugin(t *testing.T) {
	bundle := filepath.Join(t.TempDir(), "plugin")
	if out, err := run(t.Context(), "make", "-C", s.repo, "--no-print-directory", "plugin", "PLUGIN_DIR="+bundle); err != nil {
		t.Fatalf("make plugin: %v\n%s", err, out)
	}
	s.d.stopFor(t)

	shared := t.TempDir()
	for _, d := range []string{"net.d", "bin", "cni-data"} {
		if err := os.MkdirAll(filepath.Join(shared, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	states := map[string]string{}
	for _, e := range s.engines {
		state := filepath.Join(t.TempDir(), "state-"+e.name)
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		states[e.name] = state
		shareNetnsDir(t, e)
		e.docker("plugin", "rm", "-f", managedPlugin) // a crashed run's
		e.must(t, "plugin", "create", managedPlugin, bundle)
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("managed plugin on %s, its output in dockerd's log:\n%s", e.name, pluginLog(e))
			}
			if out, err := e.docker("plugin", "disable", "-f", managedPlugin); err != nil {
				t.Errorf("docker plugin disable on %s: %v\n%s", e.name, err, out)
			}
			if out, err := e.docker("plugin", "rm", "-f", managedPlugin); err != nil {
				t.Errorf("docker plugin rm on %s: %v\n%s", e.name, err, out)
			}
		})
		// Everything the plugin writes stays in this test's dirs; the
		// bundled reference plugins are the ones run (cni-bin is empty).
		e.must(t, "plugin", "set", managedPlugin,
			"state.source="+state,
			"cni-conf.source="+filepath.Join(shared, "net.d"),
			"cni-bin.source="+filepath.Join(shared, "bin"),
			"cni-data.source="+filepath.Join(shared, "cni-data"),
			"DOCKER_HOST="+e.host,
			"LOG_LEVEL=debug")
		e.must(t, "plugin", "enable", managedPlugin)
	}

	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "plugin")
		e.network(t, name, "-d", managedPlugin, "--ipam-driver", managedPlugin, "--subnet", installSubnet(e, 2))
		a, b, c := name+"-a", name+"-b", name+"-c"
		e.container(t, a, "--network", name)
		e.container(t, b, "--network", name)
		e.container(t, c, "--network", name, "--restart", "always")
		ipA, ipB := e.inspectIP(t, a, name), e.inspectIP(t, b, name)
		if err := e.ping(a, ipB); err != nil {
			t.Error(err)
		}
		if err := e.ping(b, ipA); err != nil {
			t.Error(err)
		}
		// The instance's admin API, on the host through its state mount.
		pd := *s.d
		pd.stateDir, pd.runDir = states[e.name], filepath.Join(states[e.name], "run")
		eps, err := pd.records("endpoints")
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != 3 {
			t.Fatalf("the plugin on %s has %d endpoint records, want 3: %v", e.name, len(eps), eps)
		}
		for _, ep := range eps {
			if att, _ := ep["Attachment"].(map[string]any); att == nil || att["Mode"] != e.joinMode {
				t.Errorf("join mode on %s: attachment %v, want mode %s", e.name, ep["Attachment"], e.joinMode)
			}
		}

		// dockerd enables its plugins before it restarts containers: the
		// restart-policy container comes back with its network.
		restartEngine(t, e, func() {})
		waitState(t, e, c, "running", time.Minute)
		if err := e.ping(c, gatewayOf(installSubnet(e, 2))); err != nil {
			t.Errorf("after the engine restart: %v", err)
		}
	})
}

// shareNetnsDir makes the dir where engine e mounts its containers' network
// namespaces a shared mount for the test, as it is on hosts that boot with
// systemd (/run is a shared tmpfs there). The managed plugin's /run is a
// slave of the host's: only then do namespaces the engine mounts after the
// plugin started appear in it. Here /run is a plain dir on a private root,
// and runc makes the plugin's copy of the rootfs's parent mount, that root,
// private: without this, the plugin never sees a SandboxKey as a network
// namespace and joins in move mode. It matters to engines that join in
// handover mode only.
func shareNetnsDir(t *testing.T, e engine) {
	t.Helper()
	if e.joinMode != "handover" {
		return
	}
	probe := uniq(t, e, "netns-probe")
	e.must(t, "run", "-d", "--name", probe, "--network", "none", image, "sleep", "60")
	key, err := e.docker("inspect", "-f", "{{.NetworkSettings.SandboxKey}}", probe)
	e.docker("rm", "-f", probe)
	if err != nil || !filepath.IsAbs(key) {
		t.Fatalf("SandboxKey of a container on %s: %q, %v", e.name, key, err)
	}
	dir := filepath.Dir(key)
	if out, err := run(t.Context(), "mount", "--rbind", dir, dir); err != nil {
		t.Fatalf("mount --rbind %s: %v\n%s", dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := run(context.Background(), "umount", "-R", dir); err != nil {
			t.Errorf("umount -R %s: %v\n%s", dir, err, out)
		}
	})
	if out, err := run(t.Context(), "mount", "--make-rshared", dir); err != nil {
		t.Fatalf("mount --make-rshared %s: %v\n%s", dir, err, out)
	}
}

// pluginLog is the managed plugin's output, as dockerd logs it.
func pluginLog(e engine) string {
	id, err := e.docker("plugin", "inspect", "-f", "{{.Id}}", managedPlugin)
	if err != nil {
		return "(no plugin: " + id + ")"
	}
	logFile := filepath.Join(envOr("E2E_LOG_DIR", "/var/log/docker-cni-e2e"), e.name+"-dockerd.log")
	out, _ := exec.Command("grep", "-F", id, logFile).Output()
	if len(out) > 20000 {
		out = out[len(out)-20000:]
	}
	return string(out)
}
