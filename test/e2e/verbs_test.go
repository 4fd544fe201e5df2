package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCNICheck: `docker-cni gc` runs CNI CHECK (the conflists are 1.0.0)
// over containers whose interface is as their chain left it. On the current
// engine, a -o cni.join=direct container passes the bridge plugin's CHECK;
// once its address is taken off its interface, CHECK fails, which is logged
// with the container's network and endpoint and counted, and the container
// is left running. No CHECK goes where the engine changed the interface as
// it took it over: a generated network in handover mode (libnetwork sets
// Docker's MAC), or Debian's 20.10 (move mode: the chain ran in a scratch
// netns that is gone).
func TestCNICheck(t *testing.T) {
	const ok = `docker_cni_cni_exec_duration_seconds_count{command="CHECK",plugin="bridge",result="ok"}`
	const failed = `docker_cni_reconcile_actions_total{kind="check_failed"}`
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "check")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.extraSubnet(4), "-o", "cni.version=1.0.0")
		e.container(t, name+"-c", "--network", name)
		before := scrape(t)
		gc(t)
		after := scrape(t)
		if n := count(after, ok) - count(before, ok); n != 0 || count(after, failed) != count(before, failed) {
			t.Fatalf("%s mode, the engine's MAC: %v bridge CHECKs ran, check_failed %v -> %v; want none",
				e.joinMode, n, count(before, failed), count(after, failed))
		}
		if e.joinMode == "move" {
			return
		}

		direct, ctr := name+"-direct", name+"-d"
		e.network(t, direct, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.extraSubnet(5), "-o", "cni.version=1.0.0", "-o", "cni.join=direct")
		e.container(t, ctr, "--network", direct)
		gc(t)
		checked := scrape(t)
		if n := count(checked, ok) - count(after, ok); n < 1 || count(checked, failed) != count(after, failed) {
			t.Fatalf("direct mode: %v bridge CHECKs passed (want 1 or more), check_failed %v -> %v (want unchanged)",
				n, count(after, failed), count(checked, failed))
		}

		pid := e.must(t, "inspect", "-f", "{{.State.Pid}}", ctr)
		if out, err := run(t.Context(), "nsenter", "-t", pid, "-n", "ip", "-4", "addr", "flush", "dev", "eth0"); err != nil {
			t.Fatalf("take the address off the container's eth0: %v: %s", err, out)
		}
		mark := logSize(t)
		gc(t)
		broken := scrape(t)
		if count(broken, failed) <= count(checked, failed) {
			t.Errorf("check_failed %v -> %v after the container lost its address, want one more", count(checked, failed), count(broken, failed))
		}
		if line := logSince(t, mark, "CNI CHECK failed"); !strings.Contains(line, "cni_network=") || !strings.Contains(line, "endpoint=") {
			t.Errorf("no CHECK failure logged with its network and endpoint; got %q", line)
		}
		if st := e.must(t, "inspect", "-f", "{{.State.Status}}", ctr); st != "running" {
			t.Errorf("container is %s after a failed CHECK, want it left running", st)
		}
	})
}

func scrape(t *testing.T) string {
	t.Helper()
	code, body := adminGet(t, "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics: %d", code)
	}
	return body
}

// count is a series' value, 0 when absent.
func count(scraped, series string) float64 { return max(0, metricValue(scraped, series)) }

// gc asks the daemon for a reconcile pass and waits for it.
func gc(t *testing.T) {
	t.Helper()
	if out, err := run(t.Context(), s.d.bin, "gc", "--admin-socket", filepath.Join(s.d.runDir, "admin.sock")); err != nil {
		t.Fatalf("docker-cni gc: %v: %s", err, out)
	}
}

// logSince is the first line of the daemon's log after mark that contains
// want ("" if none).
func logSince(t *testing.T, mark int64, want string) string {
	b, err := os.ReadFile(s.d.log.Name())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b[min(int64(len(b)), mark):]), "\n") {
		if strings.Contains(l, want) {
			return l
		}
	}
	return ""
}
