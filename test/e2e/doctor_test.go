package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doctorCheck and doctorOut are `docker-cni doctor --format json`'s answer.
type doctorCheck struct {
	Area, Subject, Status, Summary, Fix string
	Details                             []string
}

type doctorOut struct {
	Checks   []doctorCheck
	Failed   int
	Warnings int
}

// doctor runs `docker-cni doctor --format json` of daemon d with args and
// returns its report and whether it exited non-zero.
func doctor(t *testing.T, d *daemon, args ...string) (doctorOut, bool) {
	t.Helper()
	out, err := d.cli("doctor", append([]string{"--format", "json"}, args...)...)
	var r doctorOut
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("docker-cni doctor: %v (%v)\n%s", jerr, err, out)
	}
	if (err != nil) != (r.Failed > 0) {
		t.Errorf("docker-cni doctor: exit error %v with %d failed checks", err, r.Failed)
	}
	return r, err != nil
}

// find is the check of area and subject; it fails the test without one.
func (r doctorOut) find(t *testing.T, area, subject string) doctorCheck {
	t.Helper()
	for _, c := range r.Checks {
		if c.Area == area && c.Subject == subject {
			return c
		}
	}
	t.Fatalf("doctor has no %s check of %s:\n%s", area, subject, r)
	return doctorCheck{}
}

func (r doctorOut) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s %s %s: %s %v %s\n", c.Status, c.Area, c.Subject, c.Summary, c.Details, c.Fix)
	}
	return b.String()
}

// wantCheck fails unless c has status st and its text holds each of want.
func wantCheck(t *testing.T, c doctorCheck, st string, want ...string) {
	t.Helper()
	all := strings.Join(append(append([]string{c.Summary}, c.Details...), c.Fix), "\n")
	if c.Status != st {
		t.Errorf("doctor %s %s: %s, want %s\n%s", c.Area, c.Subject, c.Status, st, all)
	}
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("doctor %s %s lacks %q:\n%s", c.Area, c.Subject, w, all)
		}
	}
}

// docConflist is a kubelet-style conflist with no firewall plugin: bridge
// and host-local, in the suite's conf dir for the test.
func docConflist(t *testing.T, name, bridge, subnet, ipam string) string {
	t.Helper()
	freshBridge(t, bridge)
	return writeConflist(t, "40-"+name+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
	  {"type": "bridge", "bridge": %q, "isGateway": true,
	   "ipam": {"type": %q, "ranges": [[{"subnet": %q}]], "dataDir": %q}},
	  {"type": "portmap", "capabilities": {"portMappings": true}}]}`, name, bridge, ipam, subnet, filepath.Join(t.TempDir(), "ipam")))
}

// hostState is what doctor must leave as it is: the firewall and the links.
func hostState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, cmd := range [][]string{{"iptables", "-S"}, {"ip6tables", "-S"}, {"iptables", "-t", "nat", "-S"}, {"ip", "-o", "link"}} {
		out, err := run(t.Context(), cmd[0], cmd[1:]...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, out)
		}
		b.WriteString(out)
	}
	return b.String()
}

// TestDoctor: on the suite's healthy node (both engines), doctor passes and
// says what it found: each engine's version, join mode and driver, a bound
// conflist's exact command, each network's engine; it changes nothing. On
// broken nodes it says what blocks docker-cni and exits non-zero: a
// missing plugin, an engine that does not answer; a conflist with an
// unknown IPAM or a missing plugin is reported, not blocking.
func TestDoctor(t *testing.T) {
	type setup struct {
		e                               engine
		cniName, bound, generated, conf string
	}
	var setups []setup
	for i, e := range s.engines {
		cniName := "e2edoc-pods-" + e.name
		conf := docConflist(t, cniName, fmt.Sprintf("docbr%d", i), fmt.Sprintf("10.252.%d.0/24", 10+i), "host-local")
		bound := uniq(t, e, "doc")
		if out, err := s.d.cliOut("network", "create", bound, "--bind", cniName, "--cni-conf-dir", s.d.confDir,
			"--docker-host", e.host, "--driver", s.driver); err != nil {
			t.Fatalf("docker-cni network create: %v\n%s", err, out)
		}
		t.Cleanup(func() { e.docker("network", "rm", bound) })
		generated := uniq(t, e, "docgen")
		e.network(t, generated, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", fmt.Sprintf("10.252.%d.0/24", 20+i))
		e.container(t, generated+"-c", "--network", generated)
		e.container(t, bound+"-c", "--network", bound)
		setups = append(setups, setup{e, cniName, bound, generated, conf})
	}

	t.Run("healthy", func(t *testing.T) {
		before := hostState(t)
		r, failed := doctor(t, s.d)
		if failed {
			t.Errorf("doctor fails on the suite's node:\n%s", r)
		}
		if after := hostState(t); after != before {
			t.Errorf("doctor changed the host's firewall or links:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		wantCheck(t, r.find(t, "daemon", filepath.Join(s.d.runDir, "admin.sock")), "ok", "running docker-cni", "ready")
		wantCheck(t, r.find(t, "daemon", s.d.socket), "ok", "NetworkDriver", "IpamDriver")
		wantCheck(t, r.find(t, "plugins", s.d.pluginDir), "ok", "bridge (", "CNI ")
		for _, st := range setups {
			e := st.e
			wantCheck(t, r.find(t, "engine", e.host), "ok", "containers join in "+e.joinMode+" mode",
				fmt.Sprintf("finds driver %q at %s", s.driver, s.d.socket))
			c := r.find(t, "conflist", st.conf)
			wantCheck(t, c, "ok", fmt.Sprintf("%q is bindable: host-local over 10.252.", st.cniName), "bound by docker-cni network(s) ")
			if want := "docker-cni network create " + st.cniName + " --bind " + st.cniName; c.Fix != want {
				t.Errorf("doctor's command for %s: %q, want %q", st.conf, c.Fix, want)
			}
			for _, nw := range []string{st.bound, st.generated} {
				id := e.must(t, "network", "inspect", "-f", "{{.Id}}", nw)
				wantCheck(t, r.find(t, "network", id[:12]), "ok", "1 endpoint(s), 1 joined", "engine "+e.host)
			}
		}
		out, err := s.d.cli("doctor")
		if err != nil || !strings.Contains(string(out), "docker-cni can work here") {
			t.Errorf("doctor (table): %v\n%s", err, out)
		}
	})

	t.Run("conflists it cannot bind", func(t *testing.T) {
		unknown := writeConflist(t, "41-e2edoc-ipam.conflist", `{"cniVersion": "1.0.0", "name": "e2edoc-ipam", "plugins": [
		  {"type": "bridge", "bridge": "docbr9", "ipam": {"type": "e2edoc-ipam"}}]}`)
		missing := writeConflist(t, "42-e2edoc-missing.conflist", `{"cniVersion": "1.0.0", "name": "e2edoc-missing", "plugins": [
		  {"type": "bridge", "bridge": "docbr9", "ipam": {"type": "host-local", "subnet": "10.252.30.0/24"}}, {"type": "e2edoc-nosuch"}]}`)
		r, failed := doctor(t, s.d)
		if failed {
			t.Errorf("a conflist docker-cni cannot bind fails the doctor (it blocks nothing):\n%s", r)
		}
		wantCheck(t, r.find(t, "conflist", unknown), "warn", `"e2edoc-ipam" cannot be bound: plugin "e2edoc-ipam" not found in `+s.d.pluginDir,
			"IPAM plugin e2edoc-ipam does not say its ranges in its configuration: a binding would need --subnet")
		wantCheck(t, r.find(t, "conflist", missing), "warn", `"e2edoc-missing" cannot be bound: plugin "e2edoc-nosuch" not found`)
	})

	t.Run("missing plugin", func(t *testing.T) {
		bin := t.TempDir()
		entries, err := os.ReadDir(s.d.pluginDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, en := range entries {
			if en.Name() != "static" {
				if err := os.Symlink(filepath.Join(s.d.pluginDir, en.Name()), filepath.Join(bin, en.Name())); err != nil {
					t.Fatal(err)
				}
			}
		}
		r, failed := doctor(t, s.d, "--cni-bin-dir", bin)
		if !failed {
			t.Errorf("doctor passes without the static plugin:\n%s", r)
		}
		wantCheck(t, r.find(t, "plugins", bin), "fail", "no static: generated networks cannot be created")
		for _, st := range setups {
			wantCheck(t, r.find(t, "conflist", st.conf), "fail", `plugin "static" not found in `+bin, "bound by docker-cni network(s)")
		}
	})

	t.Run("stale socket", func(t *testing.T) {
		// What a killed daemon leaves: the socket's file, nobody on it.
		dir := t.TempDir()
		sock := filepath.Join(dir, "cni.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		l.(*net.UnixListener).SetUnlinkOnClose(false)
		l.Close()
		r, failed := doctor(t, s.d, "--socket", sock, "--admin-socket", filepath.Join(dir, "admin.sock"))
		if !failed {
			t.Errorf("doctor passes with a stale plugin socket and no daemon:\n%s", r)
		}
		wantCheck(t, r.find(t, "daemon", sock), "fail", "nothing listens on it", `"connection refused"`, "rm "+sock)
	})

	t.Run("engine does not answer", func(t *testing.T) {
		gone := "unix:///run/e2edoc-none.sock"
		hosts := append(append([]string{}, s.d.hosts...), gone)
		r, failed := doctor(t, s.d, "--docker-host", strings.Join(hosts, ","))
		if !failed {
			t.Errorf("doctor passes with an engine that does not answer:\n%s", r)
		}
		wantCheck(t, r.find(t, "engine", gone), "fail", "does not answer", "take it out of the daemon's --docker-host")
		for _, st := range setups {
			wantCheck(t, r.find(t, "engine", st.e.host), "ok", "containers join in "+st.e.joinMode+" mode")
		}
	})
}

// TestDoctorForwardDrop: with FORWARD's policy DROP and bridged traffic
// through iptables (dockerd's and br_netfilter's doing), a bound network
// whose conflist has no firewall plugin and no accept rules (a daemon run
// with --docker-user-rules=false) passes nothing, and doctor says so.
func TestDoctorForwardDrop(t *testing.T) {
	e := s.engines[0]
	s.d.stopFor(t)
	v, err := s.d.variant(s.d.bin, filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	v.extra = []string{"--docker-user-rules=false"}
	if err := v.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		v.stop()
		if t.Failed() {
			v.dumpLog(os.Stderr)
		}
	})
	cniName := "e2edoc-drop"
	docConflist(t, cniName, "docdrop", "10.252.40.0/24", "host-local")
	name := uniq(t, e, "docdrop")
	if out, err := v.cliOut("network", "create", name, "--bind", cniName, "--cni-conf-dir", v.confDir,
		"--docker-host", e.host, "--driver", s.driver); err != nil {
		t.Fatalf("docker-cni network create: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if ids, _ := e.docker("ps", "-aq", "--filter", "network="+name); ids != "" {
			e.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		e.docker("network", "rm", name)
	})
	a, b := name+"-a", name+"-b"
	e.container(t, a, "--network", name)
	e.container(t, b, "--network", name)
	if err := e.ping(a, e.inspectIP(t, b, name)); err == nil {
		t.Fatalf("FORWARD passes traffic on %s without accept rules: the premise of the test does not hold", name)
	}

	id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
	r, failed := doctor(t, v)
	if !failed {
		t.Errorf("doctor passes a network FORWARD drops:\n%s", r)
	}
	wantCheck(t, r.find(t, "host", "FORWARD"), "ok", "policy DROP")
	wantCheck(t, r.find(t, "network", id[:12]), "fail", "FORWARD drops its traffic", "--docker-user-rules",
		"iptables -I DOCKER-USER -s 10.252.40.0/24 -j ACCEPT && iptables -I DOCKER-USER -d 10.252.40.0/24 -j ACCEPT")
}
