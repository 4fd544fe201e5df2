// Package admin serves docker-cni's own API on a unix socket of its own
// (never Docker's plugin socket): health and readiness, Prometheus metrics,
// read-only views of the state (networks, endpoints with their CNI
// attachments, pools, reservations) for the CLI, and a trigger of a
// reconcile pass. It must not change state or run plugins itself: the one
// write, POST /v1/gc, calls the daemon's own reconcile pass.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/docker-cni/docker-cni/state"
)

// Errors of lookups by ID.
var (
	ErrNotFound  = errors.New("not found")
	ErrAmbiguous = errors.New("ambiguous")
)

// Config is what the API serves from.
type Config struct {
	Store *state.Store
	Log   *slog.Logger
	// Version is the daemon's version, served at /v1/version.
	Version string
	// Metrics serves /metrics; nil: 404.
	Metrics http.Handler
	// Ready says why the daemon is not ready to serve Docker yet, or nil
	// once it is; the state is checked besides. nil: ready when the state
	// reads.
	Ready func(context.Context) error
	// GC runs a reconcile pass now and returns what failed in it; nil:
	// POST /v1/gc answers 501.
	GC func(context.Context) error
	// NetworkEngines maps the Docker network IDs the engines have to the
	// engine that has each, for /v1/networks; nil: no engine is shown.
	NetworkEngines func(context.Context) map[string]string
	// Settings are the daemon's, served at /v1/config; nil: 404.
	Settings *Settings
}

// Settings are the daemon's own paths and engines, as it runs with them:
// what `docker-cni doctor` checks.
type Settings struct {
	Socket, CNIConfDir, CNIBinDir, StateDir, RunDir string
	DockerHosts                                     []string
	DockerUserRules                                 bool
}

// GCReport is the answer of POST /v1/gc.
type GCReport struct {
	// Took is the pass's duration.
	Took time.Duration
	// Errors are the pass's failures, one per step that failed; the pass
	// runs every step whatever fails.
	Errors []string `json:",omitempty"`
}

// VersionInfo is the answer of GET /v1/version.
type VersionInfo struct {
	Version string
}

// gcTimeout bounds a reconcile pass started over the API: it runs to its
// end even when the client goes away.
const gcTimeout = 10 * time.Minute

// New returns the admin API's handler.
func New(c Config) http.Handler {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	r := mux.NewRouter()
	get := func(path string, h http.HandlerFunc) {
		r.Methods(http.MethodGet, http.MethodHead).Path(path).HandlerFunc(h)
	}
	get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	get("/readyz", c.readyz)
	if c.Metrics != nil {
		r.Methods(http.MethodGet, http.MethodHead).Path("/metrics").Handler(c.Metrics)
	}
	get("/v1/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, VersionInfo{Version: c.Version})
	})
	if c.Settings != nil {
		get("/v1/config", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, c.Settings) })
	}
	get("/v1/endpoints/{id}", c.endpoint)
	get("/v1/{table}", c.table)
	r.Methods(http.MethodPost).Path("/v1/gc").HandlerFunc(c.gc)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed", req.Method, req.URL.Path))
	})
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Errorf("no such admin API path %s", req.URL.Path))
	})
	return r
}

func (c Config) readyz(w http.ResponseWriter, req *http.Request) {
	if err := c.ready(req.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// endpoint answers one endpoint by ID or unique prefix.
func (c Config) endpoint(w http.ResponseWriter, req *http.Request) {
	id := mux.Vars(req)["id"]
	v, err := state.Read(c.Store, func(tx *state.Tx) (EndpointView, error) { return Endpoint(tx, id) })
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, ErrAmbiguous):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		c.Log.ErrorContext(req.Context(), "admin: read endpoint", "endpoint", id, "err", err)
		writeError(w, http.StatusInternalServerError, err)
	default:
		writeJSON(w, http.StatusOK, v)
	}
}

// table answers the view of one state table.
func (c Config) table(w http.ResponseWriter, req *http.Request) {
	name := mux.Vars(req)["table"]
	list, ok := Tables[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no table %q", name))
		return
	}
	out, err := state.Read(c.Store, list)
	if err != nil {
		c.Log.ErrorContext(req.Context(), "admin: list state", "table", name, "err", err)
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	if nws, ok := out.([]NetworkView); ok && c.NetworkEngines != nil {
		owners := c.NetworkEngines(req.Context())
		for i := range nws {
			nws[i].Engine = owners[nws[i].ID]
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// gc runs a reconcile pass now and reports what failed.
func (c Config) gc(w http.ResponseWriter, req *http.Request) {
	if c.GC == nil {
		writeError(w, http.StatusNotImplemented, errors.New("this daemon cannot run a reconcile pass on request"))
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), gcTimeout)
	defer cancel()
	start := time.Now()
	c.Log.InfoContext(ctx, "reconcile pass requested over the admin API")
	err := c.GC(ctx)
	rep := GCReport{Took: time.Since(start)}
	for _, e := range unjoin(err) {
		rep.Errors = append(rep.Errors, e.Error())
	}
	writeJSON(w, http.StatusOK, rep)
}

// ready checks the daemon's own readiness, then that the state reads.
func (c Config) ready(ctx context.Context) error {
	if c.Ready != nil {
		if err := c.Ready(ctx); err != nil {
			return err
		}
	}
	if err := c.Store.View(func(*state.Tx) error { return nil }); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// unjoin splits an errors.Join into its errors.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, apiError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
