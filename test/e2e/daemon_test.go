package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is the docker-cni daemon under test, with its own dirs.
type daemon struct {
	bin, socket, dir, confDir, stateDir, runDir string
	// pluginDir is the CNI bin dir (see makePluginDir).
	pluginDir string
	// legacy: the binary is the JSON-state release, which knows only the
	// flags it had.
	legacy bool
	hosts  []string
	// extra are more serve flags.
	extra []string
	cmd   *exec.Cmd
	log   *os.File
}

func newDaemon(repo, driver string) (*daemon, error) {
	dir, err := os.MkdirTemp("", "docker-cni-e2e-")
	if err != nil {
		return nil, err
	}
	d := &daemon{
		bin:      filepath.Join(dir, "docker-cni"),
		socket:   filepath.Join("/run/docker/plugins", driver+".sock"),
		dir:      dir,
		confDir:  filepath.Join(dir, "net.d"),
		stateDir: filepath.Join(dir, "state"),
		runDir:   filepath.Join("/run", "docker-cni-e2e", "daemon"),
	}
	d.pluginDir = filepath.Join(dir, "cni-bin")
	if err := makePluginDir(context.Background(), repo, d.pluginDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(d.confDir, 0o755); err != nil {
		return nil, err
	}
	if c, err := net.DialTimeout("unix", d.socket, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is already served by another process (a docker-cni daemon?): stop it, or set E2E_DRIVER to test under another driver name", d.socket)
	}
	out, err := run(context.Background(), "go", "build", "-o", d.bin, filepath.Join(repo, "cmd", "docker-cni"))
	if err != nil {
		return nil, fmt.Errorf("build docker-cni: %v\n%s", err, out)
	}
	if d.log, err = os.Create(filepath.Join(dir, "daemon.log")); err != nil {
		return nil, err
	}
	return d, nil
}

// serveArgs are the arguments the daemon d runs with, then extra.
func serveArgs(d *daemon, extra ...string) []string {
	args := []string{"serve",
		"--socket", d.socket,
		"--cni-conf-dir", d.confDir,
		"--cni-bin-dir", d.pluginDir,
		"--state-dir", d.stateDir,
		"--cni-cache-dir", filepath.Join(d.stateDir, "cache"),
		"--run-dir", d.runDir,
		"--log-level", "debug",
		"--docker-host", strings.Join(d.hosts, ","),
		"--reconcile-interval", "2s"}
	if !d.legacy {
		args = append(args, "--cni-timeout", "10s")
	}
	return append(args, extra...)
}

func (d *daemon) start() error {
	d.cmd = exec.Command(d.bin, serveArgs(d, d.extra...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("start docker-cni: %w", err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("unix", d.socket, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("docker-cni did not serve %s within 15s", d.socket)
}

// stop sends SIGTERM and waits.
func (d *daemon) stop() {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

// stopFor stops the daemon for part of a test and makes sure it runs again
// when the test ends, even if the test fails before starting it.
func (d *daemon) stopFor(t *testing.T) {
	d.stop()
	t.Cleanup(func() {
		if d.cmd == nil {
			if err := d.start(); err != nil {
				t.Errorf("restart docker-cni: %v", err)
			}
		}
	})
}

// kill9 kills the daemon without letting it clean up.
func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d.cmd = nil
}

// removeDir removes the daemon's temporary dir (binary, conf dir, state,
// log) once the suite is done with it.
func (d *daemon) removeDir() {
	if d == nil || d.dir == "" {
		return
	}
	if d.log != nil {
		d.log.Close()
	}
	os.RemoveAll(d.dir)
}

func (d *daemon) dumpLog(w io.Writer) {
	if d == nil || d.log == nil {
		return
	}
	b, _ := os.ReadFile(d.log.Name())
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	fmt.Fprintf(w, "---- docker-cni log (%s, tail) ----\n%s\n", d.log.Name(), b)
}

// logContains reports whether the daemon log holds s.
func (d *daemon) logContains(s string) bool {
	b, _ := os.ReadFile(d.log.Name())
	return bytes.Contains(b, []byte(s))
}

// cli runs a docker-cni CLI command against the daemon under test: its
// admin socket while it runs, its state dir when it is stopped.
func (d *daemon) cli(command string, rest ...string) ([]byte, error) {
	args := append([]string{command, "--state-dir", d.stateDir, "--admin-socket", filepath.Join(d.runDir, "admin.sock")}, rest...)
	var stderr bytes.Buffer
	cmd := exec.Command(d.bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("docker-cni %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// records reads the records of one state table (networks, endpoints,
// pools, reservations) as `docker-cni dump` prints them.
func (d *daemon) records(table string) ([]map[string]any, error) {
	out, err := d.cli("dump", table)
	if err != nil {
		return nil, err
	}
	var recs []map[string]any
	if err := json.Unmarshal(out, &recs); err != nil {
		return nil, fmt.Errorf("docker-cni dump %s: %w\n%s", table, err, out)
	}
	return recs, nil
}

// variant is a daemon like d (socket, conf dir, engines, run dir) running
// bin over stateDir, logging next to stateDir. Only one of them may run at
// a time.
func (d *daemon) variant(bin, stateDir string) (*daemon, error) {
	v := *d
	v.bin, v.stateDir, v.cmd = bin, stateDir, nil
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	var err error
	if v.log, err = os.Create(filepath.Join(filepath.Dir(stateDir), filepath.Base(bin)+".log")); err != nil {
		return nil, err
	}
	return &v, nil
}

// cliOut runs a docker-cni CLI command as is and returns its combined
// output.
func (d *daemon) cliOut(args ...string) (string, error) {
	return run(context.Background(), d.bin, args...)
}
