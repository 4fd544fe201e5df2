package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/server"
)

// FuzzServer posts arbitrary bytes to every path the plugin serves (and one
// it does not). Seeded from the bodies real engines sent. The fakes neither
// fail nor panic, so whatever the body, the server must answer each path
// with exactly one of:
//   - 200 and the fake's canned reply, having called that one driver method
//     once: the body decoded;
//   - 400 with the error envelope (Err and Error, the same message, saying
//     the body did not read or decode), having called no driver method.
//
// A 500 would be a panic in the server itself; Plugin.Activate always
// answers its Implements list and an unknown path its 404, whatever the
// body. Every reply is one JSON value in Docker's plugin content type.
func FuzzServer(f *testing.F) {
	seen := map[string]bool{}
	for _, name := range traceFiles {
		for _, tr := range readTrace(f, name) {
			if !seen[tr.Body] {
				seen[tr.Body] = true
				f.Add([]byte(tr.Body))
			}
		}
	}
	for _, s := range []string{
		"null", "[]", `{"Options":{"com.docker.network.generic":null}}`, `{"Interface":null}`, "\xff\xfe",
		`{"IPv4Data":[null]}`, `{"Options":{"com.docker.network.portmap":[{"Proto":6,"HostPort":1e400}]}}`,
		`{"NetworkID":"a"}{"NetworkID":"b"}`, " \n\t",
	} {
		f.Add([]byte(s))
	}
	rec, nd, id := newFakes()
	h := server.New(nd, id, slog.New(slog.NewTextHandler(io.Discard, nil)))
	const unknown = "/NetworkDriver.Unknown"
	paths := append(driverPaths(), cnm.PathActivate, unknown)
	wantActivate := `{"Implements":["NetworkDriver","IpamDriver"]}` + "\n"
	wantUnknown := `{"Err":"docker-cni does not implement ` + unknown + `"}` + "\n"

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range paths {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			calls := rec.takeCalls()
			got := w.Body.String()
			if ct := w.Header().Get("Content-Type"); ct != cnm.DefaultContentType {
				t.Fatalf("%s %q: Content-Type %q", path, body, ct)
			}
			if !json.Valid(w.Body.Bytes()) || !strings.HasSuffix(got, "\n") {
				t.Fatalf("%s %q: reply is not one JSON value and a newline: %q", path, body, got)
			}
			switch {
			case path == cnm.PathActivate:
				if w.Code != http.StatusOK || got != wantActivate || len(calls) != 0 {
					t.Fatalf("Plugin.Activate %q: %d %s (driver calls %v)", body, w.Code, got, calls)
				}
			case path == unknown:
				if w.Code != http.StatusNotFound || got != wantUnknown || len(calls) != 0 {
					t.Fatalf("%s %q: %d %s (driver calls %v), want the 404 envelope", path, body, w.Code, got, calls)
				}
			case w.Code == http.StatusOK:
				if len(calls) != 1 || calls[0].Path != path || calls[0].Req == nil {
					t.Fatalf("%s %q: 200 after driver calls %v, want that method once", path, body, calls)
				}
				if got != wantReplies[path]+"\n" {
					t.Fatalf("%s %q: 200 %s, want the driver's reply %s", path, body, got, wantReplies[path])
				}
			case w.Code == http.StatusBadRequest:
				if len(calls) != 0 {
					t.Fatalf("%s %q: 400 after driver calls %v", path, body, calls)
				}
				var env map[string]any
				if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || len(env) != 2 || env["Err"] != env["Error"] {
					t.Fatalf("%s %q: 400 reply %s, want the envelope with Err and Error alike", path, body, got)
				}
				msg, _ := env["Err"].(string)
				if !strings.HasPrefix(msg, "decode request: ") && !strings.HasPrefix(msg, "read request: ") {
					t.Fatalf("%s %q: 400 with Err %q, want it to say the request did not decode", path, body, msg)
				}
				if len(bytes.TrimSpace(body)) == 0 {
					t.Fatalf("%s %q: an empty body was refused (%s); Docker sends none to some methods", path, body, msg)
				}
			default:
				t.Fatalf("%s %q: status %d %s from fakes that neither fail nor panic", path, body, w.Code, got)
			}
		}
	})
}
