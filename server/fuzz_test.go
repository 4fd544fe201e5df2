package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/server"
)

// FuzzServer posts arbitrary bytes to every path the plugin serves (and one
// it does not). Seeded from the bodies real engines sent. Whatever the body,
// the handler must not panic out of ServeHTTP, must answer with a status
// Docker's plugin client handles, and must answer JSON: an error envelope
// with Err set whenever the status is not 200.
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
	for _, s := range []string{"null", "[]", `{"Options":{"com.docker.network.generic":null}}`, `{"Interface":null}`, "\xff\xfe"} {
		f.Add([]byte(s))
	}
	rec, nd, id := newFakes()
	rec.discard = true
	h := server.New(nd, id, slog.New(slog.NewTextHandler(io.Discard, nil)))
	paths := append(driverPaths(), cnm.PathActivate, "/NetworkDriver.Unknown")

	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range paths {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body)))
			switch w.Code {
			case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusInternalServerError:
			default:
				t.Fatalf("%s %q: status %d", path, body, w.Code)
			}
			if ct := w.Header().Get("Content-Type"); ct != cnm.DefaultContentType {
				t.Fatalf("%s %q: Content-Type %q", path, body, ct)
			}
			if !json.Valid(w.Body.Bytes()) {
				t.Fatalf("%s %q: reply is not JSON: %q", path, body, w.Body.Bytes())
			}
			if w.Code != http.StatusOK {
				var env struct{ Err string }
				if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Err == "" {
					t.Fatalf("%s %q: %d reply without Err: %s", path, body, w.Code, w.Body.Bytes())
				}
			}
		}
	})
}
