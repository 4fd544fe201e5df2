package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/doctor"
)

// TestDoctorCommand: doctor checks the running daemon's settings unless a
// flag says otherwise, runs docker-cni's own binding rules over the conf
// dir, prints JSON, and exits non-zero naming what blocks docker-cni (here
// an engine that does not answer). Run without root: the host probes read
// what they can.
func TestDoctorCommand(t *testing.T) {
	dir := t.TempDir()
	conf, bin := filepath.Join(dir, "net.d"), filepath.Join(dir, "bin")
	os.MkdirAll(conf, 0o755)
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(conf, "10-pods.conflist"), []byte(`{"cniVersion":"1.0.0","name":"pods","plugins":[{"type":"bridge","ipam":{"type":"host-local","subnet":"10.252.1.0/24"}}]}`), 0o644)
	settings := &admin.Settings{Socket: filepath.Join(dir, "cni.sock"), CNIConfDir: conf, CNIBinDir: "/nonexistent", StateDir: filepath.Join(dir, "state"),
		DockerHosts: []string{"unix://" + filepath.Join(dir, "docker.sock")}}
	sock := daemonFakeWith(t, nil, settings)

	out, _, err := cli(t, "doctor", "--admin-socket", sock, "--cni-bin-dir", bin, "--format", "json", "--timeout", "1s")
	var r doctorReport
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("doctor --format json: %v\n%s", jerr, out)
	}
	if r.Settings.CNIConfDir != conf || r.Settings.CNIBinDir != bin || r.Settings.DockerHosts[0] != settings.DockerHosts[0] {
		t.Errorf("doctor checked %+v: want the daemon's conf dir and engines, the flag's bin dir", r.Settings)
	}
	if err == nil || !strings.Contains(err.Error(), "engine "+settings.DockerHosts[0]) || strings.Contains(oneLine(err), "\n") {
		t.Errorf("doctor's error: %v", err)
	}
	areas := map[string]bool{}
	var pods *doctor.Check
	for i, c := range r.Checks {
		areas[c.Area] = true
		if c.Subject == filepath.Join(conf, "10-pods.conflist") {
			pods = &r.Checks[i]
		}
	}
	for _, a := range []string{doctor.AreaDaemon, doctor.AreaEngine, doctor.AreaHost, doctor.AreaPlugins, doctor.AreaConflist, doctor.AreaNetwork} {
		if !areas[a] {
			t.Errorf("no %s check:\n%s", a, out)
		}
	}
	// The fake bin dir has no plugin: the binding's chain cannot run.
	if pods == nil || pods.Status != doctor.Warn || !strings.Contains(pods.Summary, `plugin "bridge" not found in `+bin) {
		t.Errorf("the pods conflist: %+v", pods)
	}

	out, _, _ = cli(t, "doctor", "--admin-socket", sock, "--cni-bin-dir", bin, "--timeout", "1s")
	wantAll(t, "doctor (table)", out, "DAEMON\n", "ENGINE\n", "  FAIL  "+settings.DockerHosts[0]+": does not answer", "CONFLIST\n", "problem(s) block docker-cni")
}
