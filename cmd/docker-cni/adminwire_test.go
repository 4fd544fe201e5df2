package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/metrics"
	"github.com/docker-cni/docker-cni/state"
)

// TestMetricsOverTCP: --metrics-address serves /metrics and nothing else
// of the admin API.
func TestMetricsOverTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveMetricsOn(l, metrics.New(state.NewMemory(), "v-test"))
	defer stop()
	base := "http://" + l.Addr().String()
	for path, want := range map[string]int{"/metrics": 200, "/v1/networks": 404, "/healthz": 404} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(b), `docker_cni_build_info{version="v-test"} 1`) {
			t.Errorf("GET /metrics lacks the build info:\n%s", b)
		}
	}
	if resp, err := http.Post(base+"/metrics", "text/plain", nil); err == nil && resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d", resp.StatusCode)
	}
}

// TestPluginServes: readiness waits for an HTTP answer on the plugin
// socket, and names the socket while there is none.
func TestPluginServes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "cni.sock")
	ready := pluginServes(sock)
	if err := ready(context.Background()); err == nil || !strings.Contains(err.Error(), "plugin socket "+sock+" does not serve yet") {
		t.Errorf("no socket: %v", err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(l)
	defer srv.Close()
	if err := ready(context.Background()); err != nil {
		t.Errorf("serving: %v", err)
	}
}
