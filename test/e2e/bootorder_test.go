package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// restartEngine stops and starts engine e with its script, as a reboot or
// an upgrade of dockerd does.
func restartEngine(t *testing.T, e engine, between func()) {
	t.Helper()
	if err := e.restart(between); err != nil {
		t.Fatal(err)
	}
}

// restart stops engine e with its script under test/engines, runs between,
// and starts it again.
func (e engine) restart(between func()) error {
	script := filepath.Join(s.repo, "test", "engines", e.name+".sh")
	if out, err := run(context.Background(), "bash", script, "stop"); err != nil {
		return fmt.Errorf("stop engine %s: %v\n%s", e.name, err, out)
	}
	between()
	if out, err := run(context.Background(), "bash", script, "start"); err != nil {
		return fmt.Errorf("start engine %s: %v\n%s", e.name, err, out)
	}
	return nil
}

// waitState waits until a container's state is want (docker inspect
// .State.Status), returning its .State.Error.
func waitState(t *testing.T, e engine, ctr, want string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, _ := e.docker("inspect", "-f", "{{.State.Status}}|{{.State.Error}}", ctr)
		status, stateErr, _ := strings.Cut(out, "|")
		if status == want {
			return stateErr
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s is %q (error %q), want %s", ctr, status, stateErr, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestEngineRestart: restart-policy containers on a docker-cni network come
// back with their network when dockerd restarts, both when docker-cni runs
// throughout and when it comes up after dockerd (boot order): then dockerd
// gives up on them ("plugin not found") and docker-cni starts them.
func TestEngineRestart(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "boot")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.extraSubnet(2))
		a, b := name+"-a", name+"-b"
		e.container(t, a, "--network", name, "--restart", "always")
		e.container(t, b, "--network", name, "--restart", "unless-stopped")
		gw := gatewayOf(e.extraSubnet(2))

		t.Run("docker-cni up", func(t *testing.T) {
			restartEngine(t, e, func() {})
			for _, c := range []string{a, b} {
				waitState(t, e, c, "running", time.Minute)
				if err := e.ping(c, gw); err != nil {
					t.Errorf("%s after the engine restart: %v", c, err)
				}
			}
		})
		t.Run("docker-cni late", func(t *testing.T) {
			restartEngine(t, e, func() { s.d.stopFor(t) })
			for _, c := range []string{a, b} {
				if stateErr := waitState(t, e, c, "exited", time.Minute); !strings.Contains(stateErr, "not found") {
					t.Logf("%s exited with %q", c, stateErr)
				}
			}
			if err := s.d.start(); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{a, b} {
				waitState(t, e, c, "running", time.Minute)
				if err := e.ping(c, gw); err != nil {
					t.Errorf("%s started by docker-cni: %v", c, err)
				}
			}
			if !s.d.logContains("starting a container the engine gave up on") {
				t.Error("docker-cni did not say it started the containers")
			}
			waitFor(t, "one endpoint per container in docker-cni's state", func() bool {
				id, _ := e.docker("network", "inspect", "-f", "{{.Id}}", name)
				eps, _ := s.d.records("endpoints")
				n := 0
				for _, ep := range eps {
					if ep["NetworkID"] == id {
						n++
					}
				}
				return n == 2
			})
		})
	})
}
