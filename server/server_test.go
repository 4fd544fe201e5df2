package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/server"
)

// reply is one answer of the handler.
type reply struct {
	Status      int
	ContentType string
	Body        string
}

func post(t testing.TB, h http.Handler, path, body string) reply {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", cnm.DefaultContentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return reply{rec.Code, rec.Header().Get("Content-Type"), rec.Body.String()}
}

func newServer(t testing.TB) (http.Handler, *recorder) {
	r, nd, id := newFakes()
	return server.New(nd, id, slog.New(slog.NewTextHandler(t.Output(), nil))), r
}

// decodeObject decodes a reply body that must be one JSON object.
func decodeObject(t testing.TB, r reply) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil || m == nil {
		t.Fatalf("reply %d %q is not a JSON object: %v", r.Status, r.Body, err)
	}
	return m
}

func TestActivate(t *testing.T) {
	h, rec := newServer(t)
	got := post(t, h, cnm.PathActivate, "")
	want := reply{http.StatusOK, cnm.DefaultContentType, `{"Implements":["NetworkDriver","IpamDriver"]}` + "\n"}
	if got != want {
		t.Errorf("Plugin.Activate = %+v, want %+v", got, want)
	}
	if calls := rec.takeCalls(); len(calls) != 0 {
		t.Errorf("Plugin.Activate reached the drivers: %v", calls)
	}
}

// TestReplayTraces posts every request real engines sent, in order, and
// checks that each reached the method its path names with every field of
// the body decoded.
func TestReplayTraces(t *testing.T) {
	for _, name := range traceFiles {
		t.Run(name, func(t *testing.T) {
			h, rec := newServer(t)
			seen := map[string]int{}
			for _, tr := range readTrace(t, name) {
				got := post(t, h, tr.Path, tr.Body)
				if got.Status != http.StatusOK || got.ContentType != cnm.DefaultContentType {
					t.Fatalf("%s: %s answered %d %q %s", tr.Where, tr.Path, got.Status, got.ContentType, got.Body)
				}
				calls := rec.takeCalls()
				if tr.Path == cnm.PathActivate {
					if len(calls) != 0 {
						t.Errorf("%s: Plugin.Activate reached a driver: %v", tr.Where, calls)
					}
					continue
				}
				if len(calls) != 1 || calls[0].Path != tr.Path {
					t.Fatalf("%s: %s reached %v, want exactly that method once", tr.Where, tr.Path, calls)
				}
				if want := wantReplies[tr.Path]; got.Body != want+"\n" {
					t.Errorf("%s: %s answered %s, want %s", tr.Where, tr.Path, got.Body, want)
				}
				if tr.Body != "" {
					for _, diff := range decodedLosslessly(t, tr.Body, calls[0].Req) {
						t.Errorf("%s: %s: %s", tr.Where, tr.Path, diff)
					}
				}
				seen[tr.Path]++
			}
			t.Logf("replayed %v", seen)
		})
	}
}

// decodedLosslessly compares a request body with the typed request the
// server decoded from it: every key and value of the body must be in the
// typed request (re-encoded), so no field Docker sends is dropped or
// mistyped.
func decodedLosslessly(t *testing.T, body string, req any) []string {
	t.Helper()
	var want, got any
	if err := json.Unmarshal([]byte(body), &want); err != nil {
		t.Fatalf("trace body: %v", err)
	}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return containsJSON("", want, got)
}

func containsJSON(at string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: got %#v, want an object", at, got)}
		}
		var diffs []string
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: dropped by the decoder", at, k))
				continue
			}
			diffs = append(diffs, containsJSON(at+"."+k, wv, gv)...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", at, got, want)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, containsJSON(fmt.Sprintf("%s[%d]", at, i), w[i], g[i])...)
		}
		return diffs
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: got %#v, want %#v", at, got, want)}
		}
		return nil
	}
}

// TestTraceFieldsDecoded spot-checks the typed fields the drivers rely on,
// as decoded from the current engine's trace and the run -p part of the
// 20.10 trace.
func TestTraceFieldsDecoded(t *testing.T) {
	h, rec := newServer(t)
	var calls []call
	for _, name := range traceFiles {
		for _, tr := range readTrace(t, name) {
			if got := post(t, h, tr.Path, tr.Body); got.Status != http.StatusOK {
				t.Fatalf("%s: %+v", tr.Where, got)
			}
			calls = append(calls, rec.takeCalls()...)
		}
	}
	first := func(path string, match func(any) bool) any {
		t.Helper()
		for _, c := range calls {
			if c.Path == path && match(c.Req) {
				return c.Req
			}
		}
		t.Fatalf("no %s call matched", path)
		return nil
	}
	const nw29 = "a028a5cf50e07e70ea214ab82d3b57fa6bd9f9edae1e1bf688f8809e475ccdcd"
	const ep29 = "e28d23bffd52e5031a3070a9123f9cf053bd3058cf6dfdb6b5d8a0266c06ed2d"

	join := first(cnm.PathJoin, func(r any) bool { return r.(*network.JoinRequest).NetworkID == nw29 }).(*network.JoinRequest)
	wantJoin := &network.JoinRequest{
		NetworkID: nw29, EndpointID: ep29, SandboxKey: "/var/run/docker-current/netns/60716aeb5593",
		Options: map[string]any{"com.docker.network.endpoint.exposedports": []any{}, "com.docker.network.portmap": []any{}},
	}
	if !reflect.DeepEqual(join, wantJoin) {
		t.Errorf("Join decoded as %+v, want %+v", join, wantJoin)
	}

	ce := first(cnm.PathCreateEndpoint, func(r any) bool { return r.(*network.CreateEndpointRequest).NetworkID == nw29 }).(*network.CreateEndpointRequest)
	if ce.EndpointID != ep29 || ce.Interface == nil || *ce.Interface != (network.EndpointInterface{Address: "10.99.0.36/24"}) {
		t.Errorf("CreateEndpoint decoded as %+v (Interface %+v)", ce, ce.Interface)
	}

	cn := first(cnm.PathCreateNetwork, func(r any) bool { return r.(*network.CreateNetworkRequest).NetworkID == nw29 }).(*network.CreateNetworkRequest)
	wantCN := &network.CreateNetworkRequest{
		NetworkID: nw29,
		Options: map[string]any{
			"com.docker.network.enable_ipv4": true, "com.docker.network.enable_ipv6": false,
			"com.docker.network.generic": map[string]any{},
		},
		IPv4Data: []*network.IPAMData{{AddressSpace: "CniProbeLocal", Pool: "10.99.0.0/24", Gateway: "10.99.0.1/24", AuxAddresses: map[string]any{}}},
		IPv6Data: []*network.IPAMData{},
	}
	if !reflect.DeepEqual(cn, wantCN) {
		t.Errorf("CreateNetwork decoded as %s, want %s", jsonOf(cn), jsonOf(wantCN))
	}

	rp := first(cnm.PathRequestPool, func(any) bool { return true }).(*ipam.RequestPoolRequest)
	if want := (&ipam.RequestPoolRequest{AddressSpace: "CniProbeLocal", Pool: "10.99.0.0/24", Options: map[string]string{}}); !reflect.DeepEqual(rp, want) {
		t.Errorf("RequestPool decoded as %+v, want %+v", rp, want)
	}

	gwReq := first(cnm.PathRequestAddress, func(r any) bool {
		return r.(*ipam.RequestAddressRequest).Options[cnm.OptRequestAddressType] != ""
	}).(*ipam.RequestAddressRequest)
	if want := (&ipam.RequestAddressRequest{PoolID: "cniprobe/10.99.0.0/24", Options: map[string]string{cnm.OptRequestAddressType: cnm.RequestAddressTypeGateway}}); !reflect.DeepEqual(gwReq, want) {
		t.Errorf("gateway RequestAddress decoded as %+v, want %+v", gwReq, want)
	}
	named := first(cnm.PathRequestAddress, func(r any) bool {
		return r.(*ipam.RequestAddressRequest).Options[cnm.OptEndpointName] != ""
	}).(*ipam.RequestAddressRequest)
	if want := (&ipam.RequestAddressRequest{PoolID: "cniprobe/10.99.0.0/24", Options: map[string]string{cnm.OptEndpointName: "goofy_bose"}}); !reflect.DeepEqual(named, want) {
		t.Errorf("RequestAddress with the endpoint name decoded as %+v, want %+v", named, want)
	}
	fixed := first(cnm.PathRequestAddress, func(r any) bool { return r.(*ipam.RequestAddressRequest).Address != "" }).(*ipam.RequestAddressRequest)
	if want := (&ipam.RequestAddressRequest{PoolID: "cniprobe/10.99.0.0/24", Address: "10.99.0.28"}); !reflect.DeepEqual(fixed, want) {
		t.Errorf("RequestAddress of a fixed address decoded as %+v, want %+v", fixed, want)
	}

	ra := first(cnm.PathReleaseAddress, func(r any) bool { return r.(*ipam.ReleaseAddressRequest).Address == "10.99.0.36" }).(*ipam.ReleaseAddressRequest)
	if ra.PoolID != "cniprobe/10.99.0.0/24" {
		t.Errorf("ReleaseAddress decoded as %+v", ra)
	}

	// docker run -p 8080:80 in the 20.10 trace.
	wantPorts := map[string]any{
		cnm.OptExposedPorts: []any{map[string]any{"Proto": float64(6), "Port": float64(80)}},
		cnm.OptPortMap: []any{map[string]any{
			"Proto": float64(6), "IP": "", "Port": float64(80), "HostIP": "", "HostPort": float64(8080), "HostPortEnd": float64(8080),
		}},
	}
	const webEP = "948d5e152a36c6874e3efba2cc1c07ce1d9656e7914a58876601f55b17fd0d3f"
	for _, path := range []string{cnm.PathCreateEndpoint, cnm.PathJoin, cnm.PathProgramExternalConn} {
		req := first(path, func(r any) bool {
			switch r := r.(type) {
			case *network.CreateEndpointRequest:
				return r.EndpointID == webEP
			case *network.JoinRequest:
				return r.EndpointID == webEP
			case *network.ProgramExternalConnectivityRequest:
				return r.EndpointID == webEP
			}
			return false
		})
		opts := reflect.ValueOf(req).Elem().FieldByName("Options").Interface().(map[string]any)
		if !reflect.DeepEqual(opts, wantPorts) {
			t.Errorf("%s port options decoded as %s, want %s", path, jsonOf(opts), jsonOf(wantPorts))
		}
	}

	// Every recorded request but Plugin.Activate reaches a driver.
	want := 0
	for _, name := range traceFiles {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		want += strings.Count(string(b), "\n>>> /") - strings.Count(string(b), "\n>>> "+cnm.PathActivate)
	}
	if len(calls) != want || want < 250 {
		t.Errorf("the two traces made %d driver calls, want %d", len(calls), want)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestRepliesEncoded: each method's answer reaches Docker as the exact JSON
// its client decodes.
func TestRepliesEncoded(t *testing.T) {
	h, _ := newServer(t)
	for path, want := range wantReplies {
		got := post(t, h, path, "{}")
		if got != (reply{http.StatusOK, cnm.DefaultContentType, want + "\n"}) {
			t.Errorf("%s answered %+v, want 200 %s", path, got, want)
		}
	}
}

// TestNilRepliesEncodeAsEmptyObject: a driver answering (nil, nil) must
// still send a JSON object; Docker decodes the body of every reply.
func TestNilRepliesEncodeAsEmptyObject(t *testing.T) {
	h, rec := newServer(t)
	rec.nilResponses = true
	for _, path := range driverPaths() {
		got := post(t, h, path, "{}")
		if got != (reply{http.StatusOK, cnm.DefaultContentType, "{}\n"}) {
			t.Errorf("%s with a nil answer = %+v, want 200 {}", path, got)
		}
	}
}

// TestDriverErrorEnvelope: a driver error reaches Docker as a 500 whose body
// carries the message as Err (network protocol, and any non-200) and Error
// (IPAM protocol).
func TestDriverErrorEnvelope(t *testing.T) {
	h, rec := newServer(t)
	for _, path := range driverPaths() {
		msg := fmt.Sprintf("%s failed: network %q not found", path, "12c573030c43")
		rec.errs[path] = fmt.Errorf("wrapped: %w", errors.New(msg))
		got := post(t, h, path, "{}")
		if got.Status != http.StatusInternalServerError || got.ContentType != cnm.DefaultContentType {
			t.Errorf("%s error: status %d %q, want 500 %q", path, got.Status, got.ContentType, cnm.DefaultContentType)
		}
		want := map[string]any{"Err": "wrapped: " + msg, "Error": "wrapped: " + msg}
		if m := decodeObject(t, got); !reflect.DeepEqual(m, want) {
			t.Errorf("%s error body = %v, want %v", path, m, want)
		}
	}
}

// TestBadRequestIs400: a driver refusing a request that lacks what its
// call needs (the empty body Docker resends after a plugin restart) is
// answered 400 with the message, never 200.
func TestBadRequestIs400(t *testing.T) {
	h, rec := newServer(t)
	for _, path := range driverPaths() {
		rec.errs[path] = fmt.Errorf("join endpoint: %w", cnm.MissingID("join", "no endpoint ID in the request"))
		got := post(t, h, path, "")
		if got.Status != http.StatusBadRequest {
			t.Errorf("%s with a refused empty request: status %d, want 400", path, got.Status)
		}
		if m := decodeObject(t, got); !strings.Contains(fmt.Sprint(m["Err"]), "no endpoint ID in the request") {
			t.Errorf("%s error body = %v", path, m)
		}
	}
}

// TestMalformedBody: a body that does not decode into the method's request
// is answered 400 with the envelope, without calling the driver.
func TestMalformedBody(t *testing.T) {
	for _, tc := range []struct {
		path, body, wantErr string
	}{
		{cnm.PathJoin, `{"NetworkID":`, "decode request: unexpected end of JSON input"},
		{cnm.PathJoin, `[1,2]`, "decode request: json: cannot unmarshal array into Go value of type network.JoinRequest"},
		{cnm.PathJoin, `{"SandboxKey": 7}`, "decode request: json: cannot unmarshal number into Go struct field JoinRequest.SandboxKey of type string"},
		{cnm.PathCreateEndpoint, `{"Interface": "10.99.0.2/24"}`, "decode request: json: cannot unmarshal string into Go struct field CreateEndpointRequest.Interface of type network.EndpointInterface"},
		{cnm.PathRequestPool, `{"Options": {"cni.network": 1}}`, "decode request: json: cannot unmarshal number into Go struct field RequestPoolRequest.Options of type string"},
		{cnm.PathRequestAddress, `{"PoolID": "p"} trailing`, "decode request: invalid character 't' after top-level value"},
		{cnm.PathNetCapabilities, `not json`, "decode request: invalid character 'o' in literal null (expecting 'u')"},
	} {
		h, rec := newServer(t)
		got := post(t, h, tc.path, tc.body)
		if got.Status != http.StatusBadRequest || got.ContentType != cnm.DefaultContentType {
			t.Errorf("%s %q: status %d %q, want 400", tc.path, tc.body, got.Status, got.ContentType)
		}
		want := map[string]any{"Err": tc.wantErr, "Error": tc.wantErr}
		if m := decodeObject(t, got); !reflect.DeepEqual(m, want) {
			t.Errorf("%s %q: body %v, want %v", tc.path, tc.body, m, want)
		}
		if calls := rec.takeCalls(); len(calls) != 0 {
			t.Errorf("%s %q: the driver was called with %v", tc.path, tc.body, calls)
		}
	}
}

// TestEmptyBodyReachesDriver: Docker sends no body for GetCapabilities and
// Plugin.Activate; an empty (or null) body decodes as the zero request.
func TestEmptyBodyReachesDriver(t *testing.T) {
	for _, body := range []string{"", " \n", "null"} {
		h, rec := newServer(t)
		if got := post(t, h, cnm.PathJoin, body); got.Status != http.StatusOK {
			t.Errorf("Join with body %q: %+v", body, got)
		}
		calls := rec.takeCalls()
		if len(calls) != 1 || !reflect.DeepEqual(calls[0].Req, &network.JoinRequest{}) {
			t.Errorf("Join with body %q reached the driver as %v, want one zero JoinRequest", body, calls)
		}
	}
}

func TestBodyTooLarge(t *testing.T) {
	h, rec := newServer(t)
	body := `{"NetworkID":"` + strings.Repeat("a", 1<<20) + `"}`
	got := post(t, h, cnm.PathCreateNetwork, body)
	const msg = "read request: http: request body too large"
	if got.Status != http.StatusBadRequest {
		t.Errorf("status %d, want 400", got.Status)
	}
	if m := decodeObject(t, got); !reflect.DeepEqual(m, map[string]any{"Err": msg, "Error": msg}) {
		t.Errorf("body %v, want Err and Error %q", m, msg)
	}
	if calls := rec.takeCalls(); len(calls) != 0 {
		t.Errorf("the driver was called: %d calls", len(calls))
	}
}

func TestUnknownPath(t *testing.T) {
	h, rec := newServer(t)
	for _, path := range []string{
		"/NetworkDriver.Frobnicate",
		"/IpamDriver.RequestPools",
		"/VolumeDriver.Create",
		"/",
		cnm.PathJoin + "/extra",
	} {
		got := post(t, h, path, "{}")
		want := reply{http.StatusNotFound, cnm.DefaultContentType, `{"Err":"docker-cni does not implement ` + path + `"}` + "\n"}
		if got != want {
			t.Errorf("POST %s = %+v, want %+v", path, got, want)
		}
	}
	if calls := rec.takeCalls(); len(calls) != 0 {
		t.Errorf("unknown paths reached the drivers: %v", calls)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPanicKeepsServing: a panicking driver method is answered 500 with the
// envelope and logged, and the daemon keeps answering, over a real HTTP
// connection as Docker uses.
func TestPanicKeepsServing(t *testing.T) {
	rec, nd, id := newFakes()
	var logs syncBuffer
	srv := httptest.NewServer(server.New(nd, id, slog.New(slog.NewTextHandler(&logs, nil))))
	defer srv.Close()
	rec.panics[cnm.PathJoin] = "runtime error: invalid memory address"
	rec.panics[cnm.PathRequestAddress] = errors.New("pool exhausted")

	do := func(path, body string) reply {
		t.Helper()
		resp, err := srv.Client().Post(srv.URL+path, cnm.DefaultContentType, strings.NewReader(body))
		if err != nil {
			t.Fatalf("POST %s: %v (the server died?)", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
	}
	for i := 0; i < 3; i++ {
		for path, panicMsg := range map[string]string{
			cnm.PathJoin:           "runtime error: invalid memory address",
			cnm.PathRequestAddress: "pool exhausted",
		} {
			got := do(path, `{"NetworkID":"n","EndpointID":"e"}`)
			msg := "internal error in docker-cni (" + panicMsg + "); see its log"
			want := reply{http.StatusInternalServerError, cnm.DefaultContentType, jsonOf(map[string]string{"Err": msg, "Error": msg}) + "\n"}
			if got != want {
				t.Errorf("panicking %s = %+v, want %+v", path, got, want)
			}
		}
		if got := do(cnm.PathLeave, `{"NetworkID":"n","EndpointID":"e"}`); got.Status != http.StatusOK || got.Body != "{}\n" {
			t.Errorf("Leave after a panic = %+v, want 200 {}", got)
		}
	}
	l := logs.String()
	for _, want := range []string{"handler panic", "method=NetworkDriver.Join", "method=IpamDriver.RequestAddress", "invalid memory address", "stack="} {
		if !strings.Contains(l, want) {
			t.Errorf("log lacks %q:\n%s", want, l)
		}
	}
}

// TestReplyEncodeFailure: a reply that cannot be encoded becomes a 500 with
// the error in Err, not a truncated 200.
func TestReplyEncodeFailure(t *testing.T) {
	rec, nd, id := newFakes()
	h := server.New(&nanOperInfo{nd}, id, slog.New(slog.NewTextHandler(t.Output(), nil)))
	got := post(t, h, cnm.PathEndpointOperInfo, `{"NetworkID":"n","EndpointID":"e"}`)
	if got.Status != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", got.Status)
	}
	if m := decodeObject(t, got); m["Err"] != "encode reply: json: unsupported value: NaN" {
		t.Errorf("body %v, want Err %q", m, "encode reply: json: unsupported value: NaN")
	}
	if calls := rec.takeCalls(); len(calls) != 1 {
		t.Errorf("calls %v, want the one EndpointOperInfo", calls)
	}
}

type nanOperInfo struct{ *fakeNet }

func (n *nanOperInfo) EndpointOperInfo(ctx context.Context, req *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error) {
	if _, err := n.fakeNet.EndpointOperInfo(ctx, req); err != nil {
		return nil, err
	}
	return &cnm.EndpointOperInfoResponse{Value: map[string]any{"bad": math.NaN()}}, nil
}

// TestConcurrentRequests: Docker calls the plugin from many goroutines; the
// router must route each request to its own method (run with -race).
func TestConcurrentRequests(t *testing.T) {
	h, rec := newServer(t)
	trace := readTrace(t, traceFiles[0])
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, tr := range trace {
				if got := post(t, h, tr.Path, tr.Body); got.Status != http.StatusOK {
					t.Errorf("%s: %+v", tr.Where, got)
					return
				}
			}
		}()
	}
	wg.Wait()
	var want []string
	for _, tr := range trace {
		if tr.Path != cnm.PathActivate {
			want = append(want, tr.Path)
		}
	}
	var got []string
	for _, c := range rec.takeCalls() {
		got = append(got, c.Path)
	}
	all := slices.Concat(want, want, want, want, want, want, want, want)
	sort.Strings(all)
	sort.Strings(got)
	if !slices.Equal(got, all) {
		t.Errorf("8 concurrent replays made %d calls, want %d with the same methods", len(got), len(all))
	}
}
