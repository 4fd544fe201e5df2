package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/state"
)

const (
	netID = "a1b2c3d4e5f60000000000000000000000000000000000000000000000000001"
	ep1   = "e1e1e1e1e1e10000000000000000000000000000000000000000000000000001"
	ep2   = "e1e1e1e1e1e20000000000000000000000000000000000000000000000000002"
	ctrID = "c0ffee000000000000000000000000000000000000000000000000000000beef"
)

// fixture is a store with one bound network, its pool, a joined endpoint
// with a published port and a CNI result, a created one, and a
// reservation for each.
func fixture(t *testing.T) *state.Store {
	t.Helper()
	s := state.NewMemory()
	now := time.Now()
	err := s.Update(func(tx *state.Tx) error {
		return errors.Join(
			tx.PutPool(&state.Pool{ID: "pool1", Subnet: "10.231.110.0/24", CNINetwork: "podnet", Bound: true, IPAMType: "host-local",
				IPAMConf: json.RawMessage(`{}`), NetworkID: netID, Created: now}),
			tx.PutNetwork(&state.Network{ID: netID, CNINetwork: "podnet", Bound: true, ConfFile: "/etc/cni/net.d/10-podnet.conflist",
				CNIVersion: "1.0.0", Conflist: json.RawMessage(`{"name":"podnet"}`), PoolIDs: []string{"pool1"}, Created: now}),
			tx.PutEndpoint(&state.Endpoint{ID: ep1, NetworkID: netID, Name: "web", ContainerID: ctrID, Addresses: []string{"10.231.110.2/24"},
				Created: now, Attachment: &state.Attachment{Mode: "handover", SandboxKey: "/var/run/docker/netns/abc", NetNS: "/var/run/docker/netns/abc",
					ContainerID: ep1, IfName: "eth0", Conflist: json.RawMessage(`{}`),
					Result:    json.RawMessage(`{"cniVersion":"1.0.0","ips":[{"address":"10.231.110.2/24"}]}`),
					Published: json.RawMessage(`[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`), Added: now}}),
			tx.PutEndpoint(&state.Endpoint{ID: ep2, NetworkID: netID, Addresses: []string{"10.231.110.3/24"}, Created: now}),
			tx.PutReservation(&state.Reservation{PoolID: "pool1", Address: "10.231.110.2", OwnerID: "docker-1", Created: now}),
			tx.PutReservation(&state.Reservation{PoolID: "pool1", Address: "10.231.110.3", OwnerID: "docker-2", Created: now}),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, h http.Handler, method, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

// TestRoutes: every route of the admin API over an in-memory state.
func TestRoutes(t *testing.T) {
	var gcCalls int
	h := admin.New(admin.Config{
		Store:   fixture(t),
		Version: "v9",
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "docker_cni_x 1\n") }),
		GC: func(context.Context) error {
			gcCalls++
			return errors.Join(errors.New("sweep IPAM stores: boom"), errors.New("reconcile with Docker: bang"))
		},
	})
	for _, tc := range []struct {
		method, path string
		code         int
		// want are substrings of the body.
		want []string
	}{
		{"GET", "/healthz", 200, []string{`"status":"ok"`}},
		{"GET", "/readyz", 200, []string{`"status":"ready"`}},
		{"GET", "/metrics", 200, []string{"docker_cni_x 1"}},
		{"GET", "/v1/version", 200, []string{`"Version":"v9"`}},
		{"GET", "/v1/networks", 200, []string{`"ID":"` + netID, `"CNINetwork":"podnet"`, `"ConfFile":"/etc/cni/net.d/10-podnet.conflist"`,
			`"Subnets":["10.231.110.0/24"]`, `"EndpointCount":2`, `"Joined":1`, `"Conflist":{"name":"podnet"}`}},
		{"GET", "/v1/endpoints", 200, []string{`"ID":"` + ep1, `"State":"joined"`, `"State":"created"`, `"CNINetwork":"podnet"`,
			`"Ports":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]`, `"IfName":"eth0"`}},
		{"GET", "/v1/endpoints/" + ep1, 200, []string{`"ID":"` + ep1, `"Result":{"cniVersion":"1.0.0"`, `"Name":"web"`}},
		{"GET", "/v1/endpoints/e1e1e1e1e1e2", 200, []string{`"ID":"` + ep2}},
		{"GET", "/v1/endpoints/e1e1e1", 409, []string{`ambiguous: 2 endpoints start with it`}},
		{"GET", "/v1/endpoints/ffff", 404, []string{`endpoint \"ffff\": not found`}},
		{"GET", "/v1/pools", 200, []string{`"ID":"pool1"`, `"Subnet":"10.231.110.0/24"`}},
		{"GET", "/v1/reservations", 200, []string{`"OwnerID":"docker-1"`, `"OwnerID":"docker-2"`}},
		{"GET", "/v1/nope", 404, []string{`no table \"nope\"`}},
		{"GET", "/nope", 404, []string{"no such admin API path /nope"}},
		{"POST", "/v1/gc", 200, []string{`"Took":`, `"Errors":["sweep IPAM stores: boom","reconcile with Docker: bang"]`}},
		{"DELETE", "/v1/gc", 405, []string{"method not allowed"}},
	} {
		code, body := get(t, h, tc.method, tc.path)
		if code != tc.code {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, code, tc.code, body)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s %s: body lacks %s:\n%s", tc.method, tc.path, w, body)
			}
		}
	}
	if gcCalls != 1 {
		t.Errorf("POST /v1/gc ran %d passes, want 1", gcCalls)
	}
}

// TestReadyz: not ready while the daemon says so (the plugin socket does
// not serve yet), with its reason; no GC hook means 501, no metrics 404.
func TestReadyz(t *testing.T) {
	h := admin.New(admin.Config{Store: fixture(t), Ready: func(context.Context) error {
		return errors.New("plugin socket /run/docker/plugins/cni.sock does not serve yet")
	}})
	code, body := get(t, h, "GET", "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "does not serve yet") {
		t.Errorf("GET /readyz: %d %s; want 503 with the reason", code, body)
	}
	if code, _ := get(t, h, "GET", "/healthz"); code != 200 {
		t.Errorf("GET /healthz while not ready: %d, want 200", code)
	}
	if code, body := get(t, h, "POST", "/v1/gc"); code != http.StatusNotImplemented {
		t.Errorf("POST /v1/gc without a GC hook: %d %s", code, body)
	}
	if code, _ := get(t, h, "GET", "/metrics"); code != 404 {
		t.Errorf("GET /metrics without metrics: %d, want 404", code)
	}
}

// TestClient: the client over a unix socket, and the error that says no
// daemon runs, naming the socket.
func TestClient(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "admin.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: admin.New(admin.Config{Store: fixture(t), GC: func(context.Context) error { return nil }})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	c := admin.NewClient(sock)
	ctx := context.Background()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	var ep admin.EndpointView
	if err := c.Get(ctx, "/v1/endpoints/e1e1e1e1e1e1", &ep); err != nil || ep.ID != ep1 || ep.Attachment == nil || ep.Ports[0].HostPort != 8080 {
		t.Errorf("Get endpoint: %+v, %v", ep, err)
	}
	var rep admin.GCReport
	if err := c.Post(ctx, "/v1/gc", &rep); err != nil || len(rep.Errors) != 0 {
		t.Errorf("Post gc: %+v, %v", rep, err)
	}
	var se *admin.StatusError
	if err := c.Get(ctx, "/v1/endpoints/nope", &ep); !errors.As(err, &se) || se.Code != 404 {
		t.Errorf("Get missing endpoint: %v, want a 404 StatusError", err)
	}

	gone := admin.NewClient(filepath.Join(t.TempDir(), "admin.sock"))
	var nr *admin.NotRunningError
	for _, err := range []error{gone.Ping(ctx), gone.Get(ctx, "/v1/networks", &ep)} {
		if !errors.As(err, &nr) || !strings.Contains(err.Error(), "no docker-cni daemon answers on "+nr.Socket) {
			t.Errorf("no daemon: %v, want a NotRunningError naming the socket", err)
		}
	}
}

// TestContainerEndpoints: a container is named by name, by ID or prefix,
// or by endpoint ID prefix, as with docker.
func TestContainerEndpoints(t *testing.T) {
	var all []admin.EndpointView
	if err := fixture(t).View(func(tx *state.Tx) (err error) {
		all, err = admin.Endpoints(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"web", []string{ep1}},
		{"/web", []string{ep1}},
		{"c0ffee", []string{ep1}},
		{"e1e1e1e1e1e2", []string{ep2}},
		{"e1e1e1", []string{ep1, ep2}},
		{"nobody", nil},
		{"", nil},
	} {
		var got []string
		for _, e := range admin.ContainerEndpoints(all, tc.name) {
			got = append(got, e.ID)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("ContainerEndpoints(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
