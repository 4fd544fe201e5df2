package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/state"
)

const (
	cliNet = "a1b2c3d4e5f60000000000000000000000000000000000000000000000000001"
	cliEp1 = "e1e1e1e1e1e10000000000000000000000000000000000000000000000000001"
	cliEp2 = "e2e2e2e2e2e20000000000000000000000000000000000000000000000000002"
)

// fill writes one bound network with a joined endpoint (container "web",
// a published port, a CNI result) and a left-over one.
func fill(t *testing.T, s *state.Store) {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	err := s.Update(func(tx *state.Tx) error {
		return errors.Join(
			tx.PutPool(&state.Pool{ID: "pool1", Subnet: "10.231.110.0/24", CNINetwork: "podnet", Bound: true, NetworkID: cliNet, Created: now}),
			tx.PutNetwork(&state.Network{ID: cliNet, CNINetwork: "podnet", Bound: true, ConfFile: "/etc/cni/net.d/10-podnet.conflist",
				CNIVersion: "1.0.0", Conflist: json.RawMessage(`{"name":"podnet"}`), PoolIDs: []string{"pool1"}, Created: now}),
			tx.PutEndpoint(&state.Endpoint{ID: cliEp1, NetworkID: cliNet, Name: "web", ContainerID: "c0ffee00beef", Addresses: []string{"10.231.110.2/24"},
				Created: now, Attachment: &state.Attachment{Mode: "handover", SandboxKey: "/var/run/docker/netns/abc", NetNS: "/var/run/docker/netns/abc",
					ContainerID: cliEp1, IfName: "eth0", HostIfName: "dcnie1e1e1e1e1e1", Conflist: json.RawMessage(`{}`), Args: [][2]string{{"K8S_POD_NAME", "web"}},
					Result:    json.RawMessage(`{"cniVersion":"1.0.0","ips":[{"address":"10.231.110.2/24","gateway":"10.231.110.1"}]}`),
					Published: json.RawMessage(`[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`), Added: now}}),
			tx.PutEndpoint(&state.Endpoint{ID: cliEp2, NetworkID: cliNet, Name: "db", Addresses: []string{"10.231.110.3/24"}, Created: now,
				Leftover: "cni DEL: plugin gone", Retries: 2, RetryAt: now}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// daemonFake serves the admin API over a filled in-memory store on a
// socket in a fresh dir, and returns the socket; gc counts passes.
func daemonFake(t *testing.T, gc func(context.Context) error) string {
	t.Helper()
	return daemonFakeWith(t, gc, nil)
}

// daemonFakeWith is daemonFake serving settings at /v1/config.
func daemonFakeWith(t *testing.T, gc func(context.Context) error, settings *admin.Settings) string {
	t.Helper()
	s := state.NewMemory()
	fill(t, s)
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	engines := func(context.Context) map[string]string { return map[string]string{cliNet: "unix:///run/e1.sock"} }
	srv := &http.Server{Handler: admin.New(admin.Config{Store: s, Version: "v-test", GC: gc, NetworkEngines: engines, Settings: settings})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// cli runs a command of the CLI and returns its stdout and stderr.
func cli(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// TestCLITables: networks, endpoints (and ls), inspect as tables, read
// from the running daemon.
func TestCLITables(t *testing.T) {
	sock := daemonFake(t, nil)
	at := []string{"--admin-socket", sock, "--state-dir", filepath.Join(t.TempDir(), "none")}

	out, errOut, err := cli(t, append([]string{"networks"}, at...)...)
	if err != nil || errOut != "" {
		t.Fatalf("networks: %v %s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "a1b2c3d4e5f6 podnet bound 1.0.0 10.231.110.0/24 2 unix:///run/e1.sock /etc/cni/net.d/10-podnet.conflist" {
		t.Errorf("networks:\n%s", out)
	}
	wantAll(t, "networks header", lines[0], "NETWORK", "CNI NETWORK", "KIND", "SUBNETS", "ENDPOINTS", "ENGINE", "CONFLIST")

	for _, cmd := range []string{"endpoints", "ls"} {
		out, _, err = cli(t, append([]string{cmd}, at...)...)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		lines = strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 ||
			strings.Join(strings.Fields(lines[1]), " ") != "e1e1e1e1e1e1 web a1b2c3d4e5f6 podnet handover eth0 10.231.110.2/24 0.0.0.0:8080->80/tcp" ||
			strings.Join(strings.Fields(lines[2]), " ") != "e2e2e2e2e2e2 db a1b2c3d4e5f6 podnet leftover - 10.231.110.3/24 -" {
			t.Errorf("%s:\n%s", cmd, out)
		}
	}

	out, _, err = cli(t, append([]string{"inspect"}, append(at, "web")...)...)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	wantAll(t, "inspect web", out, "Endpoint:", cliEp1, "Container:", "web (c0ffee00beef)", "Network:", cliNet,
		"CNI network:", "podnet (CNI version 1.0.0)", "Mode:", "handover", "Interface:", "eth0 (in the host as dcnie1e1e1e1e1e1",
		"Addresses:", "10.231.110.2/24", "Ports:", "0.0.0.0:8080->80/tcp", "CNI args:", "K8S_POD_NAME=web",
		"CNI result:", `"gateway": "10.231.110.1"`)

	out, _, err = cli(t, append([]string{"inspect"}, append(at, "db")...)...)
	if err != nil {
		t.Fatalf("inspect db: %v", err)
	}
	wantAll(t, "inspect db", out, "State:", "leftover", "Left over:", "cni DEL: plugin gone (retries 2", "CNI result: -")

	_, _, err = cli(t, append([]string{"inspect"}, append(at, "nobody")...)...)
	if err == nil || !strings.Contains(err.Error(), `no docker-cni endpoint of container "nobody" in the daemon on `+sock) {
		t.Errorf("inspect nobody: %v", err)
	}
}

// TestCLIJSON: --format json (and ls --json) print what scripts need.
func TestCLIJSON(t *testing.T) {
	sock := daemonFake(t, nil)
	at := []string{"--admin-socket", sock}

	out, _, err := cli(t, append([]string{"networks", "--format", "json"}, at...)...)
	var nws []admin.NetworkView
	if err != nil || json.Unmarshal([]byte(out), &nws) != nil || len(nws) != 1 || nws[0].ID != cliNet ||
		nws[0].EndpointCount != 2 || nws[0].Joined != 1 || !strings.Contains(string(nws[0].Conflist), `"podnet"`) || nws[0].Engine != "unix:///run/e1.sock" {
		t.Errorf("networks --format json: %v\n%s", err, out)
	}

	for _, args := range [][]string{{"endpoints", "--format", "json"}, {"ls", "--json"}} {
		out, _, err = cli(t, append(args, at...)...)
		var rows []map[string]any
		if err != nil || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		r := rows[0]
		if r["Endpoint"] != cliEp1 || r["Name"] != "web" || r["CNINetwork"] != "podnet" || r["CNIVersion"] != "1.0.0" || r["Mode"] != "handover" ||
			r["IfName"] != "eth0" || r["CNIContainerID"] != cliEp1 || r["Sandbox"] != "/var/run/docker/netns/abc" {
			t.Errorf("%v row: %v", args, r)
		}
		if ps, _ := r["Ports"].([]any); len(ps) != 1 || ps[0].(map[string]any)["hostPort"] != 8080.0 {
			t.Errorf("%v ports: %v", args, r["Ports"])
		}
		if rows[1]["Leftover"] != "cni DEL: plugin gone" || rows[1]["Mode"] != "leftover" {
			t.Errorf("%v left-over row: %v", args, rows[1])
		}
	}

	out, _, err = cli(t, append([]string{"inspect", "--format", "json"}, append(at, "c0ffee")...)...)
	var eps []admin.EndpointView
	if err != nil || json.Unmarshal([]byte(out), &eps) != nil || len(eps) != 1 || eps[0].Attachment == nil ||
		!strings.Contains(string(eps[0].Attachment.Result), "10.231.110.2/24") {
		t.Errorf("inspect --format json: %v\n%s", err, out)
	}

	if _, _, err := cli(t, append([]string{"networks", "--format", "yaml"}, at...)...); err == nil || !strings.Contains(err.Error(), "want table or json") {
		t.Errorf("--format yaml: %v", err)
	}
}

// TestCLIGC: gc asks the daemon for a pass and reports what failed.
func TestCLIGC(t *testing.T) {
	passes := 0
	fail := false
	sock := daemonFake(t, func(context.Context) error {
		passes++
		if fail {
			return errors.Join(errors.New("sweep IPAM stores: boom"))
		}
		return nil
	})
	out, _, err := cli(t, "gc", "--admin-socket", sock)
	if err != nil || !strings.HasPrefix(out, "reconcile pass done in ") || passes != 1 {
		t.Errorf("gc: %v, %q, %d passes", err, out, passes)
	}
	fail = true
	out, _, err = cli(t, "gc", "--admin-socket", sock, "--format", "json")
	var rep admin.GCReport
	if err == nil || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Errors) != 1 || passes != 2 {
		t.Errorf("failing gc: %v, %q", err, out)
	}

	out, _, err = cli(t, "version", "--admin-socket", sock)
	if err != nil || out != "docker-cni dev\ndaemon: v-test ("+sock+")\n" {
		t.Errorf("version: %v\n%s", err, out)
	}
}

// TestCLINotRunning: with no daemon, gc says so and where it looked; the
// read commands read the state dir, saying so, or say where they looked
// for both.
func TestCLINotRunning(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "admin.sock")

	_, _, err := cli(t, "gc", "--admin-socket", sock)
	var nr *admin.NotRunningError
	if !errors.As(err, &nr) || !strings.Contains(err.Error(), "no docker-cni daemon answers on "+sock) {
		t.Errorf("gc with no daemon: %v", err)
	}

	stateDir := filepath.Join(dir, "state")
	_, _, err = cli(t, "endpoints", "--admin-socket", sock, "--state-dir", stateDir)
	if err == nil || !strings.Contains(err.Error(), "no docker-cni daemon answers on "+sock) || !strings.Contains(err.Error(), "its state in "+stateDir+" cannot be read") {
		t.Errorf("endpoints with neither daemon nor state: %v", err)
	}

	s, err := state.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s)
	s.Close()
	out, errOut, err := cli(t, "endpoints", "--admin-socket", sock, "--state-dir", stateDir)
	if err != nil || !strings.Contains(out, "e1e1e1e1e1e1") {
		t.Errorf("endpoints from the state dir: %v\n%s", err, out)
	}
	if errOut != "docker-cni: no daemon answers on "+sock+"; read its state in "+stateDir+" instead\n" {
		t.Errorf("endpoints from the state dir: stderr %q", errOut)
	}
	out, _, err = cli(t, "inspect", "--admin-socket", sock, "--state-dir", stateDir, "web")
	if err != nil || !strings.Contains(out, `"address": "10.231.110.2/24"`) {
		t.Errorf("inspect from the state dir: %v\n%s", err, out)
	}

	out, _, err = cli(t, "version", "--admin-socket", sock)
	if err != nil || out != "docker-cni dev\ndaemon: not running: nothing answers on "+sock+"\n" {
		t.Errorf("version with no daemon: %v\n%s", err, out)
	}
}
