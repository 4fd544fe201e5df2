package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// httpGet fetches a URL from the host, retrying while the service starts.
func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	var err error
	for i := 0; i < 30; i++ {
		var resp *http.Response
		if resp, err = c.Get(url); err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), rerr
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", fmt.Errorf("GET %s: %w", url, err)
}

// lsRow reads the `docker-cni ls --json` row of the endpoint holding ip.
func lsRow(t *testing.T, ip string) map[string]any {
	t.Helper()
	out, err := s.d.cli("ls", "--json")
	if err != nil {
		t.Fatalf("docker-cni ls: %v", err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(out, &rows); err != nil {
		t.Fatalf("docker-cni ls --json: %v\n%s", err, out)
	}
	for _, r := range rows {
		for _, a := range r["Addresses"].([]any) {
			if strings.HasPrefix(a.(string), ip+"/") {
				return r
			}
		}
	}
	t.Fatalf("docker-cni ls has no endpoint with %s:\n%s", ip, out)
	return nil
}

// lsPorts reads the published ports of an endpoint from `docker-cni ls`.
func lsPorts(t *testing.T, ip string) []map[string]any {
	t.Helper()
	ps, _ := lsRow(t, ip)["Ports"].([]any)
	var out []map[string]any
	for _, p := range ps {
		out = append(out, p.(map[string]any))
	}
	return out
}

// TestPublishedPorts: -p publishes through the CNI portmap plugin: the
// service answers on 127.0.0.1 and on the bridge gateway, -P gets a port
// docker-cni picks and shows, a host IP binding is honoured, and docker rm
// removes the rules.
func TestPublishedPorts(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		name := uniq(t, e, "ports")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", e.subnet(16))
		gw := strings.TrimSuffix(e.subnet(16), "0/24") + "1"
		hostPort := 18080 + e.net
		web := name + "-web"
		e.must(t, "run", "-d", "--name", web, "--network", name,
			"-p", fmt.Sprintf("%d:80", hostPort),
			"-p", fmt.Sprintf("127.0.0.1:%d:80", hostPort+1),
			"-p", fmt.Sprintf("%d:81/udp", hostPort+2),
			"--expose", "82", "-P",
			image, "sh", "-c", "echo hello-from-"+e.name+" > /tmp/index.html; httpd -f -p 80 -h /tmp & httpd -f -p 82 -h /tmp")
		t.Cleanup(func() { e.docker("rm", "-f", web) })
		want := "hello-from-" + e.name
		for _, url := range []string{
			fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort),
			fmt.Sprintf("http://%s:%d/index.html", gw, hostPort),
			fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort+1),
		} {
			if body, err := httpGet(url); err != nil || !strings.Contains(body, want) {
				t.Errorf("GET %s: %q, %v; want %q", url, body, err, want)
			}
		}
		ip := e.inspectIP(t, web, name)
		ports := lsPorts(t, ip)
		var picked float64
		seen := map[string]bool{}
		for _, p := range ports {
			seen[fmt.Sprintf("%v/%v", p["containerPort"], p["protocol"])] = true
			if p["containerPort"].(float64) == 82 {
				picked = p["hostPort"].(float64)
			}
		}
		for _, k := range []string{"80/tcp", "81/udp", "82/tcp"} {
			if !seen[k] {
				t.Errorf("docker-cni ls does not show container port %s published: %v", k, ports)
			}
		}
		if picked < 49153 || picked > 60999 {
			t.Errorf("-P host port %v, want one docker-cni picked in 49153-60999", picked)
		} else if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", int(picked))); err != nil || !strings.Contains(body, want) {
			t.Errorf("GET on the -P port %v: %q, %v", picked, body, err)
		}
		if n := natRulesMentioning(t, fmt.Sprintf("--dport %d", hostPort+2)); n == 0 {
			t.Errorf("no DNAT rule for %d/udp", hostPort+2)
		}
		// A second container cannot take a host port in use.
		out, err := e.docker("run", "--rm", "--network", name, "-p", fmt.Sprintf("%d:80", hostPort), image, "true")
		if err == nil || !strings.Contains(out, fmt.Sprintf("host port %d/tcp is already in use", hostPort)) {
			t.Errorf("second -p %d: err %v, %q; want 'already in use'", hostPort, err, out)
		}

		e.must(t, "rm", "-f", web)
		for _, p := range []int{hostPort, hostPort + 1, hostPort + 2, int(picked)} {
			if n := natRulesMentioning(t, fmt.Sprintf("--dport %d ", p)); n != 0 {
				t.Errorf("after docker rm, %d nat rules still mention port %d", n, p)
			}
		}
	})
}
