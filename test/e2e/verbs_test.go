package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestCNICheck: `docker-cni gc` runs CNI CHECK (the conflist is 1.0.0)
// over containers whose interface is as their chain left it. On the current
// engine (handover: the bridge plugin set the MAC docker-cni chose, and
// libnetwork took the interface back under its ADD name) the container
// passes the real bridge plugin's CHECK; once its address is taken off its
// interface, CHECK fails, which is logged with the container's network and
// endpoint and counted, and the container is left running. On Debian's
// 20.10 (move mode: the chain ran in a scratch netns that is gone) no CHECK
// is sent.
func TestCNICheck(t *testing.T) {
	const ok = `docker_cni_cni_exec_duration_seconds_count{command="CHECK",plugin="bridge",result="ok"}`
	const failed = `docker_cni_reconcile_actions_total{kind="check_failed"}`
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "check")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.extraSubnet(4), "-o", "cni.version=1.0.0")
		ctr := name + "-c"
		e.container(t, ctr, "--network", name)
		before := scrape(t)
		gc(t)
		after := scrape(t)
		n := count(after, ok) - count(before, ok)
		if e.joinMode == "move" {
			if n != 0 || count(after, failed) != count(before, failed) {
				t.Fatalf("move mode: %v bridge CHECKs ran, check_failed %v -> %v; want none", n, count(before, failed), count(after, failed))
			}
			return
		}
		if n < 1 || count(after, failed) != count(before, failed) {
			t.Fatalf("%s mode: %v bridge CHECKs passed (want 1 or more), check_failed %v -> %v (want unchanged)",
				e.joinMode, n, count(before, failed), count(after, failed))
		}

		pid := e.must(t, "inspect", "-f", "{{.State.Pid}}", ctr)
		if out, err := run(t.Context(), "nsenter", "-t", pid, "-n", "ip", "-4", "addr", "flush", "dev", "eth0"); err != nil {
			t.Fatalf("take the address off the container's eth0: %v: %s", err, out)
		}
		mark := logSize(t)
		gc(t)
		broken := scrape(t)
		if count(broken, failed) <= count(after, failed) {
			t.Errorf("check_failed %v -> %v after the container lost its address, want one more", count(after, failed), count(broken, failed))
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
	if _, err := s.d.cli("gc"); err != nil {
		t.Fatal(err)
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
