package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultNet is a network bound to a conflist whose chain holds the fault
// plugin (test/plugins/fault): bridge + host-local, then fault, driven by
// files in control.
type faultNet struct {
	e                     engine
	name, cniName, bridge string
	control, dataDir      string
	subnet                string
	containers            []string
	addrs                 map[string]string
}

// newFaultNet binds a network of e to a fault conflist on its k-th extra
// subnet.
func newFaultNet(t *testing.T, e engine, k int, tag string) *faultNet {
	t.Helper()
	f := &faultNet{e: e, cniName: "e2e-fault-" + tag + "-" + e.name, bridge: "e2ef" + tag + e.name[:3],
		control: t.TempDir(), dataDir: filepath.Join(t.TempDir(), "ipam"), subnet: e.extraSubnet(k), addrs: map[string]string{}}
	freshBridge(t, f.bridge)
	writeConflist(t, "40-"+f.cniName+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
	  {"type": "bridge", "bridge": %q, "isGateway": true,
	   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
	  {"type": "fault", "control": %q}]}`, f.cniName, f.bridge, f.subnet, f.dataDir, f.control))
	f.name = uniq(t, e, "fault"+tag)
	e.network(t, f.name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+f.cniName, "--subnet", f.subnet)
	return f
}

// mode sets what the fault plugin does on a command ("pass" clears it).
func (f *faultNet) mode(t *testing.T, command, mode string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(f.control, command), []byte(mode), 0o644); err != nil {
		t.Fatal(err)
	}
}

// run starts a container on the network and records its address.
func (f *faultNet) run(t *testing.T, name string) {
	t.Helper()
	f.e.container(t, name, "--network", f.name)
	f.addrs[name] = f.e.inspectIP(t, name, f.name)
}

// waitBlocked waits until the fault plugin blocks in command.
func (f *faultNet) waitBlocked(t *testing.T, command string) {
	t.Helper()
	waitFor(t, "the fault plugin blocking in "+command, func() bool {
		_, err := os.Stat(filepath.Join(f.control, command+".blocked"))
		return err == nil
	})
}

// leaks lists what docker-cni and the plugins still hold for the network
// beyond the containers in keep: endpoint records, reservations, store
// entries owned by docker-cni, ports on the bridge, dcni links and scratch
// netns no live endpoint explains.
func (f *faultNet) leaks(t *testing.T, keep ...string) []string {
	t.Helper()
	var out []string
	id, _ := f.e.docker("network", "inspect", "-f", "{{.Id}}", f.name)
	eps, err := s.d.records("endpoints")
	if err != nil {
		return []string{"records: " + err.Error()}
	}
	live := 0
	for _, ep := range eps {
		if ep["NetworkID"] == id {
			live++
		}
	}
	if live != len(keep) {
		out = append(out, fmt.Sprintf("%d endpoint records, want %d", live, len(keep)))
	}
	rs, _ := s.d.records("reservations")
	if n := len(filterPool(rs, f.cniName)); n != len(keep) {
		out = append(out, fmt.Sprintf("%d reservations, want %d", n, len(keep)))
	}
	entries, _ := os.ReadDir(filepath.Join(f.dataDir, f.cniName))
	held := 0
	for _, en := range entries {
		if owner, ok := storeOwner(f.dataDir, f.cniName, en.Name()); ok && strings.HasPrefix(owner, "docker-") {
			held++
		}
	}
	if held != len(keep) {
		out = append(out, fmt.Sprintf("%d addresses held in the CNI store, want %d", held, len(keep)))
	}
	if ports := bridgePorts(f.bridge); len(ports) != len(keep) {
		out = append(out, fmt.Sprintf("bridge ports %v, want %d", ports, len(keep)))
	}
	return append(out, strayLinks(t)...)
}

// strayLinks lists dcni links and scratch netns no endpoint record knows.
func strayLinks(t *testing.T) []string {
	eps, _ := s.d.records("endpoints")
	known := func(short string) bool {
		for _, ep := range eps {
			if strings.HasPrefix(fmt.Sprint(ep["ID"]), short) {
				return true
			}
		}
		return false
	}
	var out []string
	links, _ := run(t.Context(), "ip", "-o", "link", "show")
	for _, l := range strings.Split(links, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "dcni") {
			if name := strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"); !known(strings.TrimPrefix(name, "dcni")) {
				out = append(out, "link "+name)
			}
		}
	}
	netns, _ := os.ReadDir(filepath.Join(s.d.runDir, "netns"))
	for _, n := range netns {
		if n.Name() != "ipam" && !known(n.Name()) {
			out = append(out, "scratch netns "+n.Name())
		}
	}
	return out
}

// waitNoLeaks waits (reconcile passes run every 2 s) until nothing leaks.
func (f *faultNet) waitNoLeaks(t *testing.T, keep ...string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var leaks []string
	for time.Now().Before(deadline) {
		if leaks = f.leaks(t, keep...); len(leaks) == 0 {
			return
		}
		time.Sleep(time.Second)
	}
	t.Errorf("leaks on %s: %v", f.name, leaks)
}

// TestPluginFaults: a chain plugin that fails, prints garbage or hangs gives
// the Docker user a clear error naming what happened, and nothing half-made
// stays; a container already running keeps its network.
func TestPluginFaults(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		f := newFaultNet(t, e, 4, "p")
		keep := f.name + "-keep"
		f.run(t, keep)
		for _, tc := range []struct{ mode, want string }{
			{"fail", `plugin type="fault" failed (add): fault: injected failure on ADD`},
			{"garbage", `plugin type="fault" failed (add): failed to unmarshal raw result`},
			{"hang", "timed out after 10s (--cni-timeout)"},
		} {
			t.Run(tc.mode, func(t *testing.T) {
				f.mode(t, "ADD", tc.mode)
				defer f.mode(t, "ADD", "pass")
				name := f.name + "-" + tc.mode
				out, err := e.docker("run", "-d", "--name", name, "--network", f.name, image, "sleep", "600")
				t.Cleanup(func() { e.docker("rm", "-f", name) })
				if err == nil || !strings.Contains(out, tc.want) {
					t.Errorf("docker run with the plugin in mode %s: %v\n%s\nwant an error holding %q", tc.mode, err, out, tc.want)
				}
				e.docker("rm", "-f", name)
				f.waitNoLeaks(t, keep)
			})
		}
		if err := e.ping(keep, gatewayOf(f.subnet)); err != nil {
			t.Errorf("the running container lost its network: %v", err)
		}
	})
}

// gatewayOf is the first address of a subnet: the bridge's.
func gatewayOf(subnet string) string {
	return strings.TrimSuffix(strings.Split(subnet, "/")[0], ".0") + ".1"
}

// TestKilledMidCall: docker-cni killed with kill -9 while a plugin runs
// ADD (a container starting) or DEL (a container being removed), then
// started again: the interrupted call ends one way or the other, nothing
// leaks, and a running container keeps its network.
func TestKilledMidCall(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		f := newFaultNet(t, e, 5, "k")
		keep := f.name + "-keep"
		f.run(t, keep)
		for _, cmd := range []string{"ADD", "DEL"} {
			t.Run(cmd, func(t *testing.T) {
				victim := f.name + "-" + strings.ToLower(cmd)
				if cmd == "DEL" {
					f.run(t, victim)
				}
				f.mode(t, cmd, "block")
				os.Remove(filepath.Join(f.control, cmd+".blocked"))
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					if cmd == "ADD" {
						e.docker("run", "-d", "--name", victim, "--network", f.name, image, "sleep", "600")
					} else {
						e.docker("rm", "-f", victim)
					}
				}()
				f.waitBlocked(t, cmd)
				s.d.kill9()
				f.mode(t, cmd, "pass")
				if err := s.d.start(); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				e.docker("rm", "-f", victim)
				f.waitNoLeaks(t, keep)
			})
		}
		if err := e.ping(keep, gatewayOf(f.subnet)); err != nil {
			t.Errorf("the running container lost its network: %v", err)
		}
	})
}

// TestDownAcrossRemove: containers removed (docker rm -f) and stopped
// (docker stop) while docker-cni is down leave nothing once it is back: their
// DEL runs, their addresses return to the CNI store, their links and
// scratch netns go.
func TestDownAcrossRemove(t *testing.T) {
	nets := map[string]*faultNet{}
	for _, e := range s.engines {
		f := newFaultNet(t, e, 3, "d")
		f.run(t, f.name+"-rm")
		f.run(t, f.name+"-stop")
		f.run(t, f.name+"-keep")
		nets[e.name] = f
	}
	s.d.stopFor(t)
	var wg sync.WaitGroup
	for _, f := range nets {
		wg.Add(2)
		go func() { defer wg.Done(); f.e.docker("rm", "-f", f.name+"-rm") }()
		go func() { defer wg.Done(); f.e.docker("stop", "-t", "1", f.name+"-stop") }()
	}
	wg.Wait()
	if err := s.d.start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range nets {
		t.Run(f.e.name, func(t *testing.T) {
			f.waitNoLeaks(t, f.name+"-keep")
			if err := f.e.ping(f.name+"-keep", gatewayOf(f.subnet)); err != nil {
				t.Errorf("the running container lost its network: %v", err)
			}
			// The stopped container starts again with a working network.
			f.e.must(t, "start", f.name+"-stop")
			ip := f.e.inspectIP(t, f.name+"-stop", f.name)
			checkReach(t, f.e, f.name+"-keep", f.addrs[f.name+"-keep"], f.name+"-stop", ip)
		})
	}
}
