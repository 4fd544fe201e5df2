package metrics_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/metrics"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/server"
	"github.com/docker-cni/docker-cni/state"
)

const netID = "a1b2c3d4e5f60000000000000000000000000000000000000000000000000001"

// store holds one generated network with a joined, a created and a
// left-over endpoint, two reservations in its pool, one in a pool no
// network claims, and an intent.
func store(t *testing.T) *state.Store {
	t.Helper()
	s := state.NewMemory()
	now := time.Now()
	err := s.Update(func(tx *state.Tx) error {
		return errors.Join(
			tx.PutPool(&state.Pool{ID: "p1", Subnet: "10.231.110.0/24", CNINetwork: "gen", NetworkID: netID, Created: now}),
			tx.PutPool(&state.Pool{ID: "p2", Subnet: "10.231.111.0/24", CNINetwork: "orphan", Created: now}),
			tx.PutNetwork(&state.Network{ID: netID, CNINetwork: "gen", Conflist: json.RawMessage(`{}`), PoolIDs: []string{"p1"}, Created: now}),
			tx.PutEndpoint(&state.Endpoint{ID: "ep1", NetworkID: netID, Created: now, Attachment: &state.Attachment{Mode: "move", Conflist: json.RawMessage(`{}`)}}),
			tx.PutEndpoint(&state.Endpoint{ID: "ep2", NetworkID: netID, Created: now}),
			tx.PutEndpoint(&state.Endpoint{ID: "ep3", NetworkID: netID, Created: now, Leftover: "cni DEL: boom"}),
			tx.PutReservation(&state.Reservation{PoolID: "p1", Address: "10.231.110.2", OwnerID: "docker-1"}),
			tx.PutReservation(&state.Reservation{PoolID: "p1", Address: "10.231.110.3", OwnerID: "docker-2"}),
			tx.PutReservation(&state.Reservation{PoolID: "p2", Address: "10.231.111.2", OwnerID: "docker-3"}),
			tx.PutIntent(&state.Intent{ID: "docker-4", Kind: state.IntentReserve, PoolID: "p1", Created: now}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scrape returns the text exposition of m.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// value is the value of the series named exactly (name{labels}) in a
// scrape, or -1.
func value(scraped, series string) float64 {
	for _, l := range strings.Split(scraped, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestScrape: after calls, execs and reconcile actions, a scrape holds
// their series, and the state gauges as the store has them.
func TestScrape(t *testing.T) {
	m := metrics.New(store(t), "v1.2.3")
	m.Served("NetworkDriver.Join", server.ResultOK, 300*time.Millisecond, 200*time.Millisecond)
	m.Served("NetworkDriver.Join", server.ResultOK, 100*time.Millisecond, 0)
	m.Served("NetworkDriver.Leave", server.ResultError, 50*time.Millisecond, 40*time.Millisecond)
	m.PluginExec("bridge", "ADD", 150*time.Millisecond, nil)
	m.PluginExec("bridge", "DEL", 10*time.Millisecond, errors.New("boom"))
	m.Add(observe.EndpointDropped)
	m.Add(observe.LinkSwept)
	m.Add(observe.LinkSwept)
	m.Pass("gc", nil)
	m.Pass("loop", errors.New("x"))

	got := scrape(t, m)
	for series, want := range map[string]float64{
		`docker_cni_build_info{version="v1.2.3"}`:                                                    1,
		`docker_cni_plugin_call_duration_seconds_count{method="NetworkDriver.Join",result="ok"}`:     2,
		`docker_cni_plugin_call_duration_seconds_sum{method="NetworkDriver.Join",result="ok"}`:       0.4,
		`docker_cni_plugin_call_overhead_seconds_sum{method="NetworkDriver.Join",result="ok"}`:       0.2,
		`docker_cni_plugin_call_overhead_seconds_count{method="NetworkDriver.Leave",result="error"}`: 1,
		`docker_cni_cni_exec_duration_seconds_count{command="ADD",plugin="bridge",result="ok"}`:      1,
		`docker_cni_cni_exec_duration_seconds_count{command="DEL",plugin="bridge",result="error"}`:   1,
		`docker_cni_reconcile_actions_total{kind="endpoint_dropped"}`:                                1,
		`docker_cni_reconcile_actions_total{kind="link_swept"}`:                                      2,
		`docker_cni_reconcile_actions_total{kind="network_dropped"}`:                                 0,
		`docker_cni_leaks_found_total{kind="link_swept"}`:                                            2,
		`docker_cni_leaks_found_total{kind="endpoint_dropped"}`:                                      -1,
		`docker_cni_reconcile_passes_total{result="ok",trigger="gc"}`:                                1,
		`docker_cni_reconcile_passes_total{result="error",trigger="loop"}`:                           1,
		`docker_cni_networks{kind="generated"}`:                                                      1,
		`docker_cni_networks{kind="bound"}`:                                                          0,
		`docker_cni_endpoints{cni_network="gen",network="a1b2c3d4e5f6",state="joined"}`:              1,
		`docker_cni_endpoints{cni_network="gen",network="a1b2c3d4e5f6",state="created"}`:             1,
		`docker_cni_endpoints{cni_network="gen",network="a1b2c3d4e5f6",state="leftover"}`:            1,
		`docker_cni_reservations{cni_network="gen",network="a1b2c3d4e5f6"}`:                          2,
		`docker_cni_reservations{cni_network="orphan",network=""}`:                                   1,
		`docker_cni_reservation_intents`:                                                             1,
	} {
		if v := value(got, series); v != want {
			t.Errorf("%s = %v, want %v", series, v, want)
		}
	}
	for _, family := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(got, family) {
			t.Errorf("scrape lacks %s", family)
		}
	}
}

// TestGaugesFollowState: the gauges are read from the state at each
// scrape, never kept by hand.
func TestGaugesFollowState(t *testing.T) {
	s := store(t)
	m := metrics.New(s, "dev")
	series := `docker_cni_endpoints{cni_network="gen",network="a1b2c3d4e5f6",state="created"}`
	if v := value(scrape(t, m), series); v != 1 {
		t.Fatalf("%s = %v before, want 1", series, v)
	}
	if err := s.Update(func(tx *state.Tx) error { return tx.DeleteEndpoint("ep2") }); err != nil {
		t.Fatal(err)
	}
	if v := value(scrape(t, m), series); v != 0 {
		t.Errorf("%s = %v after the endpoint went, want 0", series, v)
	}
}

// joinDriver answers Join by running a plugin through cnirun with the
// request's context, then spending a known time of its own; every other
// method is unused.
type joinDriver struct {
	stubNet
	runner *cnirun.LibCNI
	own    time.Duration
}

func (d joinDriver) Join(ctx context.Context, _ *network.JoinRequest) (*cnm.JoinResponse, error) {
	if _, err := d.runner.PluginAdd(ctx, "sleepy", []byte(`{"cniVersion":"1.0.0","name":"n","type":"sleepy"}`),
		cnirun.PluginArgs{ContainerID: "c1", IfName: "eth0", NetNS: "/proc/self/ns/net"}); err != nil {
		return nil, err
	}
	time.Sleep(d.own)
	return &cnm.JoinResponse{}, nil
}

// TestOverheadPerRequest: a Join that runs a plugin for about 200 ms and
// spends about 100 ms of its own is measured as such: the plugin's exec
// time by plugin and command, and the call's overhead (duration minus
// exec time) apart from it.
func TestOverheadPerRequest(t *testing.T) {
	dir := t.TempDir()
	plugin := "#!/bin/sh\ncat >/dev/null\nsleep 0.2\necho '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.231.110.9/24\"}]}'\n"
	if err := os.WriteFile(filepath.Join(dir, "sleepy"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(state.NewMemory(), "dev")
	runner := cnirun.New([]string{dir}, filepath.Join(dir, "cache"))
	runner.Observer = m
	var logs bytes.Buffer
	log := slog.New(observe.LogHandler(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	runner.Log = log
	h := server.New(joinDriver{runner: runner, own: 100 * time.Millisecond}, stubIPAM{}, log, server.WithObserver(m))

	body := `{"NetworkID":"` + netID + `","EndpointID":"e1e1e1e1e1e1ffff","SandboxKey":"/x"}`
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", cnm.PathJoin, strings.NewReader(body)))
	if rec.Code != http.StatusOK {
		t.Fatalf("Join: %d %s", rec.Code, rec.Body)
	}
	got := scrape(t, m)
	exec := value(got, `docker_cni_cni_exec_duration_seconds_sum{command="ADD",plugin="sleepy",result="ok"}`)
	took := value(got, `docker_cni_plugin_call_duration_seconds_sum{method="NetworkDriver.Join",result="ok"}`)
	overhead := value(got, `docker_cni_plugin_call_overhead_seconds_sum{method="NetworkDriver.Join",result="ok"}`)
	if exec < 0.2 || exec > 1 {
		t.Errorf("plugin exec %v s, want about 0.2", exec)
	}
	if overhead < 0.1 || overhead > 0.5 {
		t.Errorf("Join overhead %v s, want about 0.1 (took %v, exec %v)", overhead, took, exec)
	}
	if d := took - exec - overhead; d > 1e-6 || d < -1e-6 {
		t.Errorf("duration %v != exec %v + overhead %v", took, exec, overhead)
	}
	// The plugin's debug line carries the request's network and endpoint.
	var ran map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == "cni plugin ran" {
			ran = rec
		}
	}
	want := map[string]any{"cni_plugin": "sleepy", "command": "ADD", "method": "NetworkDriver.Join", "network": "a1b2c3d4e5f6", "endpoint": "e1e1e1e1e1e1"}
	for k, v := range want {
		if ran[k] != v {
			t.Errorf("'cni plugin ran' log line: %s = %v, want %v\n%s", k, ran[k], v, logs.String())
		}
	}
	if !regexp.MustCompile(`"msg":"request done".*"cni_exec":[1-9]`).MatchString(logs.String()) {
		t.Errorf("no 'request done' line with the exec time:\n%s", logs.String())
	}
}
