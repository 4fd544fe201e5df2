package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/metrics"
	"github.com/docker-cni/docker-cni/state"
)

// adminHandler is the admin API of the daemon dm serving Docker on
// pluginSocket until ctx ends. A pass asked for with POST /v1/gc runs to
// its end when the client goes away, and stops with the daemon.
func (dm *daemon) adminHandler(ctx context.Context, store *state.Store, f serveFlags) http.Handler {
	return admin.New(admin.Config{
		Store:   store,
		Log:     dm.log,
		Version: version,
		Metrics: dm.metrics.Handler(),
		Ready:   pluginServes(f.socket),
		Settings: &admin.Settings{Socket: f.socket, CNIConfDir: f.confDir, CNIBinDir: f.binDir, StateDir: f.stateDir, RunDir: f.runDir,
			DockerHosts: strings.Split(f.dockerHosts, ","), DockerUserRules: f.dockerUserRules},
		GC: func(context.Context) error { return dm.gc(ctx) },
		NetworkEngines: func(ctx context.Context) map[string]string {
			owners, err := dm.engines.NetworkOwners(ctx, 3*time.Second)
			if err != nil {
				dm.log.Debug("admin: which engine has each network", "err", err)
			}
			return owners
		},
	})
}

// pluginServes reports whether docker-cni's HTTP server answers on the
// plugin socket, as Docker would find it. It asks for a path the plugin
// does not have: any HTTP answer will do, and no driver call is made (nor
// counted).
func pluginServes(socket string) func(context.Context) error {
	c := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
		Timeout: 2 * time.Second,
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker-cni/readyz-probe", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("plugin socket %s does not serve yet: %w", socket, err)
		}
		resp.Body.Close()
		return nil
	}
}

// serveMetrics serves /metrics, and nothing else, over TCP on addr until the
// returned stop is called: Prometheus cannot scrape a unix socket. An empty
// addr serves nothing.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-address: %w", err)
	}
	log.Info("serving metrics", "address", l.Addr().String())
	return serveMetricsOn(l, m), nil
}

// serveMetricsOn serves /metrics on l until the returned stop is called.
func serveMetricsOn(l net.Listener, m *metrics.Metrics) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return func() { srv.Close() }
}
