package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// adminGet fetches a path of the daemon's admin API over its socket.
func adminGet(t *testing.T, path string) (int, string) {
	t.Helper()
	sock := filepath.Join(s.d.runDir, "admin.sock")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://docker-cni" + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, sock, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metricValue is the value of one series (name{labels}, labels sorted as
// Prometheus prints them) in a scrape, or -1 when absent.
func metricValue(scraped, series string) float64 {
	for _, l := range strings.Split(scraped, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// TestObservability: after a container ran on a docker-cni network, the
// admin API is ready and /metrics holds its Join (calls, overhead, the
// plugins' exec times) and the network's gauges; the CLI lists the network
// and the endpoint, inspects the container's attachment, runs a reconcile
// pass on request (counted), and says where it looked when no daemon runs.
func TestObservability(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		k := e.net / 16
		subnet := fmt.Sprintf("10.231.%d.0/24", 110+k)
		hostPort := 19180 + k
		name := uniq(t, e, "obs")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", subnet)
		ctr := name + "-c"
		e.container(t, ctr, "--network", name, "-p", fmt.Sprintf("%d:80", hostPort))
		ip := e.inspectIP(t, ctr, name)
		netID := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		epID := e.must(t, "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).EndpointID}}", name), ctr)

		for _, p := range []string{"/healthz", "/readyz"} {
			if code, body := adminGet(t, p); code != 200 {
				t.Errorf("GET %s: %d %s", p, code, body)
			}
		}

		// The CLI: networks.
		out, err := s.d.cli("networks", "--format", "json")
		if err != nil {
			t.Fatal(err)
		}
		var nws []map[string]any
		if err := json.Unmarshal(out, &nws); err != nil {
			t.Fatalf("networks --format json: %v\n%s", err, out)
		}
		var cniName string
		for _, nw := range nws {
			if nw["ID"] == netID {
				cniName, _ = nw["CNINetwork"].(string)
				if nw["EndpointCount"] != 1.0 || nw["Joined"] != 1.0 {
					t.Errorf("networks --format json: %s has %v endpoints, %v joined; want 1, 1", name, nw["EndpointCount"], nw["Joined"])
				}
				if nw["Engine"] != e.host {
					t.Errorf("networks --format json: %s is on engine %v, want %s (the engine that has it, of --docker-host)", name, nw["Engine"], e.host)
				}
			}
		}
		if cniName == "" {
			t.Fatalf("networks --format json: no network %s:\n%s", netID, out)
		}
		out, err = s.d.cli("networks")
		if err != nil || !strings.Contains(string(out), netID[:12]) || !strings.Contains(string(out), subnet) || !strings.Contains(string(out), cniName) ||
			!strings.Contains(string(out), e.host) {
			t.Errorf("networks: %v\n%s", err, out)
		}

		// endpoints, and ls, its alias.
		for _, cmd := range []string{"endpoints", "ls"} {
			out, err = s.d.cli(cmd)
			var line string
			for _, l := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(l, epID[:12]) {
					line = l
				}
			}
			if err != nil || !strings.Contains(line, ip+"/24") || !strings.Contains(line, fmt.Sprintf("0.0.0.0:%d->80/tcp", hostPort)) ||
				!strings.Contains(line, e.joinMode) {
				t.Errorf("%s: no line for endpoint %s with %s, %s and its port: %v\n%s", cmd, epID[:12], ip, e.joinMode, err, out)
			}
		}

		// inspect, by name (20.10 sends no name: docker-cni learns it from
		// the engine in the background) and by ID.
		ctrID := e.must(t, "inspect", "-f", "{{.Id}}", ctr)
		waitFor(t, "docker-cni inspect "+ctr, func() bool {
			_, err := s.d.cli("inspect", ctr)
			return err == nil
		})
		out, err = s.d.cli("inspect", ctr)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"Endpoint:", epID, "Network:", netID, "CNI network:", cniName, "Mode:", e.joinMode, "Interface:",
			"Addresses:", ip + "/24", "Ports:", fmt.Sprintf("0.0.0.0:%d->80/tcp", hostPort), "CNI result:", `"address": "` + ip + `/24"`} {
			if !strings.Contains(string(out), w) {
				t.Errorf("inspect %s lacks %q:\n%s", ctr, w, out)
			}
		}
		out, err = s.d.cli("inspect", "--format", "json", ctrID[:12])
		var eps []map[string]any
		if err != nil || json.Unmarshal(out, &eps) != nil || len(eps) != 1 || eps[0]["ID"] != epID {
			t.Errorf("inspect --format json %s: %v\n%s", ctrID[:12], err, out)
		} else if att, _ := eps[0]["Attachment"].(map[string]any); att == nil || !strings.Contains(fmt.Sprint(att["Result"]), ip+"/24") {
			t.Errorf("inspect --format json: attachment without the CNI result: %v", eps[0]["Attachment"])
		}

		// /metrics after the container ran.
		code, m := adminGet(t, "/metrics")
		if code != 200 {
			t.Fatalf("GET /metrics: %d\n%s", code, m)
		}
		short := netID[:12]
		for _, series := range []string{
			`docker_cni_plugin_call_duration_seconds_count{method="NetworkDriver.Join",result="ok"}`,
			`docker_cni_plugin_call_overhead_seconds_count{method="NetworkDriver.Join",result="ok"}`,
			`docker_cni_plugin_call_duration_seconds_count{method="IpamDriver.RequestAddress",result="ok"}`,
			`docker_cni_cni_exec_duration_seconds_count{command="ADD",plugin="bridge",result="ok"}`,
			`docker_cni_cni_exec_duration_seconds_count{command="ADD",plugin="portmap",result="ok"}`,
		} {
			if v := metricValue(m, series); v < 1 {
				t.Errorf("%s = %v, want at least 1", series, v)
			}
		}
		for series, want := range map[string]float64{
			fmt.Sprintf(`docker_cni_endpoints{cni_network=%q,network=%q,state="joined"}`, cniName, short): 1,
			fmt.Sprintf(`docker_cni_reservations{cni_network=%q,network=%q}`, cniName, short):             1,
		} {
			if v := metricValue(m, series); v != want {
				t.Errorf("%s = %v, want %v", series, v, want)
			}
		}
		joinSum := metricValue(m, `docker_cni_plugin_call_duration_seconds_sum{method="NetworkDriver.Join",result="ok"}`)
		overheadSum := metricValue(m, `docker_cni_plugin_call_overhead_seconds_sum{method="NetworkDriver.Join",result="ok"}`)
		if overheadSum < 0 || overheadSum >= joinSum {
			t.Errorf("Join overhead %v s not below Join duration %v s: plugin exec time not taken out", overheadSum, joinSum)
		}
		t.Logf("Joins so far: %v s in all, of which docker-cni's own %v s", joinSum, overheadSum)

		// gc: a reconcile pass on request, counted.
		gcSeries := `docker_cni_reconcile_passes_total{result="ok",trigger="gc"}`
		before := max(metricValue(m, gcSeries), 0)
		out, err = s.d.cli("gc")
		if err != nil || !strings.HasPrefix(string(out), "reconcile pass done in ") {
			t.Errorf("gc: %v\n%s", err, out)
		}
		if _, m = adminGet(t, "/metrics"); metricValue(m, gcSeries) != before+1 {
			t.Errorf("%s = %v after gc, want %v", gcSeries, metricValue(m, gcSeries), before+1)
		}
		if out, err := s.d.cliOut("version", "--admin-socket", filepath.Join(s.d.runDir, "admin.sock")); err != nil || !strings.Contains(out, "daemon: ") || strings.Contains(out, "not running") {
			t.Errorf("version: %v\n%s", err, out)
		}

		// No daemon on the socket named: the CLI says where it looked.
		gone := filepath.Join(t.TempDir(), "admin.sock")
		if out, err := s.d.cliOut("gc", "--admin-socket", gone); err == nil || !strings.Contains(out, "no docker-cni daemon answers on "+gone) {
			t.Errorf("gc with no daemon: %v\n%s", err, out)
		}

		// The gauges follow the state: the endpoint is gone with the
		// container, and Leave was counted.
		e.must(t, "rm", "-f", ctr)
		_, m = adminGet(t, "/metrics")
		if v := metricValue(m, fmt.Sprintf(`docker_cni_endpoints{cni_network=%q,network=%q,state="joined"}`, cniName, short)); v != 0 {
			t.Errorf("joined endpoints after docker rm: %v, want 0", v)
		}
		if v := metricValue(m, `docker_cni_cni_exec_duration_seconds_count{command="DEL",plugin="bridge",result="ok"}`); v < 1 {
			t.Errorf("no bridge DEL counted after docker rm: %v", v)
		}
	})
}

// TestObservabilityFirewallRules: the DOCKER-USER accept rules of a bound
// network without a firewall plugin, now made through go-iptables, are in
// place while the network exists (counted once each, whatever the
// reconcile passes in between), and gone with it.
func TestObservabilityFirewallRules(t *testing.T) {
	e := s.engines[0]
	cniName, bridge, subnet := "e2e-obs-nofw", "e2eobsfw", "10.231.118.0/24"
	freshBridge(t, bridge)
	writeConflist(t, "20-"+cniName+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
	  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true,
	   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}]}`,
		cniName, bridge, subnet, filepath.Join(s.d.dir, "obs-nofw")))
	name := uniq(t, e, "obsfw")
	e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName)
	id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
	comment := "docker-cni network " + id[:12]
	rules := func() string {
		out, err := run(t.Context(), "iptables", "-S", "DOCKER-USER")
		if err != nil {
			t.Fatalf("iptables -S DOCKER-USER: %v\n%s", err, out)
		}
		return out
	}
	if out, err := s.d.cli("gc"); err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	got := rules()
	if strings.Count(got, comment) != 2 || !strings.Contains(got, "-s "+subnet) || !strings.Contains(got, "-d "+subnet) {
		t.Fatalf("DOCKER-USER after create and a reconcile pass, want one -s and one -d rule for %s:\n%s", subnet, got)
	}
	e.must(t, "network", "rm", name)
	if got := rules(); strings.Contains(got, comment) {
		t.Errorf("network rm left DOCKER-USER rules:\n%s", got)
	}
}
