package main

// The probes of `docker-cni doctor`: thin reads of the daemon, the engines
// and the CNI bin dirs into package doctor's facts. They run no container
// and change nothing: the only plugin runs are CNI VERSION.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/doctor"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/state"
)

// doctorSettings are what the doctor checks: the running daemon's settings
// (/v1/config), where a flag does not say otherwise.
type doctorSettings struct {
	adminSocket, socket, stateDir, confDir, binDir string
	hosts                                          []string
	timeout                                        time.Duration
}

func (s *doctorSettings) binDirs() []string { return filepath.SplitList(s.binDir) }

func (s *doctorSettings) driver() string {
	return trimSock(filepath.Base(s.socket))
}

func trimSock(name string) string {
	if ext := filepath.Ext(name); ext == ".sock" {
		return name[:len(name)-len(ext)]
	}
	return name
}

// probeDaemon asks the admin API and the plugin socket, or, with no
// daemon, reads the state dir.
func probeDaemon(ctx context.Context, s *doctorSettings) doctor.DaemonFacts {
	f := doctor.DaemonFacts{AdminSocket: s.adminSocket, PluginSocket: s.socket, StateDir: s.stateDir}
	f.SocketExists = listening(s.socket)
	if fi, err := os.Lstat(s.socket); err == nil && fi.Mode()&os.ModeSocket != 0 && !f.SocketExists {
		f.SocketStale = true
	}
	f.SpecFiles = specFiles(s.driver())
	c := admin.NewClient(s.adminSocket)
	if err := c.Ping(ctx); err != nil {
		f.AdminErr = err.Error()
		if st, err := state.OpenReadOnly(s.stateDir); err != nil {
			f.StateErr, f.StateMissing = err.Error(), errors.Is(err, os.ErrNotExist)
		} else {
			st.Close()
		}
		return f
	}
	f.Running = true
	var vi admin.VersionInfo
	if err := c.Get(ctx, "/v1/version", &vi); err != nil {
		f.AdminErr = err.Error()
	}
	f.Version = vi.Version
	var ready map[string]string
	if err := c.Get(ctx, "/readyz", &ready); err != nil {
		f.ReadyErr = err.Error()
	}
	var err error
	f.Implements, err = activate(ctx, s.socket)
	if err != nil {
		f.PluginErr = err.Error()
	}
	return f
}

// activate sends Docker's Plugin.Activate handshake to the plugin socket,
// as dockerd does when it first looks the driver up.
func activate(ctx context.Context, socket string) ([]string, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://plugin/Plugin.Activate", bytes.NewReader(nil))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.docker.plugins.v1.2+json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("Plugin.Activate on %s: %w", socket, err)
	}
	defer resp.Body.Close()
	var out struct{ Implements []string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("Plugin.Activate on %s: %s: %w", socket, resp.Status, err)
	}
	return out.Implements, nil
}

// probeEngines asks each engine what it is; owners maps the engines'
// network IDs to their engine, ok when every engine answered.
func probeEngines(ctx context.Context, s *doctorSettings) (facts []doctor.EngineFacts, owners map[string]string, ok bool) {
	es, err := engine.New(s.hosts)
	if err != nil {
		return []doctor.EngineFacts{{Host: fmt.Sprint(s.hosts), Err: err.Error()}}, nil, false
	}
	served := listening(s.socket)
	for _, d := range es.Describe(ctx, s.driver(), s.timeout) {
		f := doctor.EngineFacts{Host: d.Host, Version: d.Version, APIVersion: d.APIVersion, Driver: s.driver(), DriverSocket: s.socket,
			SocketExists: served, ManagedPlugins: d.NetworkPlugins, Networks: d.Networks}
		if d.Err != nil {
			f.Err = d.Err.Error()
		}
		facts = append(facts, f)
	}
	owners, err = es.NetworkOwners(ctx, s.timeout)
	return facts, owners, err == nil
}

// probePlugins lists the bin dirs and asks each plugin, the first of its
// name (the one libcni runs), its CNI versions.
func probePlugins(ctx context.Context, s *doctorSettings) doctor.PluginFacts {
	var f doctor.PluginFacts
	runner := cnirun.New(s.binDirs(), "")
	runner.Timeout = s.timeout
	seen := map[string]bool{}
	for _, dir := range s.binDirs() {
		entries, err := os.ReadDir(dir)
		bd := doctor.BinDir{Path: dir}
		if err != nil {
			bd.Err = err.Error()
			if errors.Is(err, os.ErrNotExist) {
				bd.Err = "does not exist"
			}
		}
		f.Dirs = append(f.Dirs, bd)
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if seen[e.Name()] || !executable(path) {
				continue
			}
			seen[e.Name()] = true
			p := doctor.Plugin{Name: e.Name(), Path: path}
			if p.Versions, err = runner.PluginVersions(ctx, path); err != nil {
				p.Err = err.Error()
			}
			f.Plugins = append(f.Plugins, p)
		}
	}
	return f
}

// specDirs are where Docker looks for plugin spec files.
var specDirs = []string{"/etc/docker/plugins", "/usr/lib/docker/plugins"}

// specFiles reads Docker's spec files for the driver name.
func specFiles(name string) []doctor.SpecFile {
	var out []doctor.SpecFile
	for _, dir := range specDirs {
		for _, ext := range []string{".spec", ".json"} {
			path := filepath.Join(dir, name+ext)
			b, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			sf := doctor.SpecFile{Path: path}
			if err == nil {
				sf.Addr, err = doctor.SpecAddr(path, b)
			}
			if err != nil {
				sf.Err = err.Error()
			}
			out = append(out, sf)
		}
	}
	return out
}

// listening reports whether a socket listens on path (the kernel's list).
func listening(path string) bool {
	b, err := os.ReadFile("/proc/net/unix")
	return err == nil && doctor.Listening(string(b), path)
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
