// Package server is the HTTP front of docker-cni's plugin socket: one router
// answers Plugin.Activate with both NetworkDriver and IpamDriver and routes
// every NetworkDriver.* and IpamDriver.* call to the drivers, decoding
// requests into go-plugins-helpers types and encoding replies and error
// envelopes the way Docker's plugin client expects.
//
// It holds no state and does no networking of its own.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
	"github.com/gorilla/mux"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/observe"
)

// NetworkDriver is the network half of the plugin.
type NetworkDriver interface {
	GetCapabilities(context.Context, *struct{}) (*network.CapabilitiesResponse, error)
	CreateNetwork(context.Context, *network.CreateNetworkRequest) (*struct{}, error)
	AllocateNetwork(context.Context, *network.AllocateNetworkRequest) (*network.AllocateNetworkResponse, error)
	DeleteNetwork(context.Context, *network.DeleteNetworkRequest) (*struct{}, error)
	FreeNetwork(context.Context, *network.FreeNetworkRequest) (*struct{}, error)
	CreateEndpoint(context.Context, *network.CreateEndpointRequest) (*network.CreateEndpointResponse, error)
	DeleteEndpoint(context.Context, *network.DeleteEndpointRequest) (*struct{}, error)
	EndpointOperInfo(context.Context, *network.InfoRequest) (*cnm.EndpointOperInfoResponse, error)
	Join(context.Context, *network.JoinRequest) (*cnm.JoinResponse, error)
	Leave(context.Context, *network.LeaveRequest) (*struct{}, error)
	DiscoverNew(context.Context, *network.DiscoveryNotification) (*struct{}, error)
	DiscoverDelete(context.Context, *network.DiscoveryNotification) (*struct{}, error)
	ProgramExternalConnectivity(context.Context, *network.ProgramExternalConnectivityRequest) (*struct{}, error)
	RevokeExternalConnectivity(context.Context, *network.RevokeExternalConnectivityRequest) (*struct{}, error)
}

// IPAMDriver is the IPAM half of the plugin.
type IPAMDriver interface {
	GetCapabilities(context.Context, *struct{}) (*ipam.CapabilitiesResponse, error)
	GetDefaultAddressSpaces(context.Context, *struct{}) (*ipam.AddressSpacesResponse, error)
	RequestPool(context.Context, *ipam.RequestPoolRequest) (*ipam.RequestPoolResponse, error)
	ReleasePool(context.Context, *ipam.ReleasePoolRequest) (*struct{}, error)
	RequestAddress(context.Context, *ipam.RequestAddressRequest) (*ipam.RequestAddressResponse, error)
	ReleaseAddress(context.Context, *ipam.ReleaseAddressRequest) (*struct{}, error)
}

// maxBody bounds a request body; Docker's requests are a few KiB.
const maxBody = 1 << 20

// HandlerTimeout bounds a handler: every plugin run in it has a deadline of
// its own (--cni-timeout), this is the backstop.
const HandlerTimeout = 2 * time.Minute

// Observer is told of every plugin call once it is answered; package
// metrics implements it.
type Observer interface {
	// Served reports one call: its method ("NetworkDriver.Join"), its
	// result (ResultOK, ResultBadRequest or ResultError), how long it took
	// from the request read to the reply written, and how much of that was
	// spent executing CNI plugins (added up by cnirun in the request's
	// observe.ExecClock). took - cniExec is docker-cni's own overhead.
	Served(method, result string, took, cniExec time.Duration)
}

// Results of a call, as Observer.Served is told.
const (
	ResultOK         = "ok"
	ResultBadRequest = "bad_request"
	ResultError      = "error"
)

// Option changes what New builds.
type Option func(*front)

// WithObserver makes every call reported to o.
func WithObserver(o Observer) Option { return func(f *front) { f.obs = o } }

// front is what every route shares.
type front struct {
	log *slog.Logger
	obs Observer
}

type nopObserver struct{}

func (nopObserver) Served(string, string, time.Duration, time.Duration) {}

// New returns the plugin's HTTP handler.
func New(nd NetworkDriver, id IPAMDriver, log *slog.Logger, opts ...Option) http.Handler {
	f := &front{log: log, obs: nopObserver{}}
	for _, o := range opts {
		o(f)
	}
	r := mux.NewRouter()
	r.Methods(http.MethodPost).Path(cnm.PathActivate).HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		start := time.Now()
		writeJSON(w, http.StatusOK, cnm.ActivateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}})
		f.obs.Served(cnm.PathActivate[1:], ResultOK, time.Since(start), 0)
	})
	route(r, f, cnm.PathNetCapabilities, nd.GetCapabilities)
	route(r, f, cnm.PathCreateNetwork, nd.CreateNetwork)
	route(r, f, cnm.PathAllocateNetwork, nd.AllocateNetwork)
	route(r, f, cnm.PathDeleteNetwork, nd.DeleteNetwork)
	route(r, f, cnm.PathFreeNetwork, nd.FreeNetwork)
	route(r, f, cnm.PathCreateEndpoint, nd.CreateEndpoint)
	route(r, f, cnm.PathDeleteEndpoint, nd.DeleteEndpoint)
	route(r, f, cnm.PathEndpointOperInfo, nd.EndpointOperInfo)
	route(r, f, cnm.PathJoin, nd.Join)
	route(r, f, cnm.PathLeave, nd.Leave)
	route(r, f, cnm.PathDiscoverNew, nd.DiscoverNew)
	route(r, f, cnm.PathDiscoverDelete, nd.DiscoverDelete)
	route(r, f, cnm.PathProgramExternalConn, nd.ProgramExternalConnectivity)
	route(r, f, cnm.PathRevokeExternalConn, nd.RevokeExternalConnectivity)
	route(r, f, cnm.PathIpamCapabilities, id.GetCapabilities)
	route(r, f, cnm.PathDefaultAddressSpaces, id.GetDefaultAddressSpaces)
	route(r, f, cnm.PathRequestPool, id.RequestPool)
	route(r, f, cnm.PathReleasePool, id.ReleasePool)
	route(r, f, cnm.PathRequestAddress, id.RequestAddress)
	route(r, f, cnm.PathReleaseAddress, id.ReleaseAddress)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, cnm.ErrorResponse{Err: "docker-cni does not implement " + req.URL.Path})
	})
	return r
}

// route registers one typed handler. A request body that does not decode
// is answered 400, a handler error 500 with the error envelope, a panic 500
// without crashing the daemon. Every call is reported to the observer, and
// its log lines (the driver's too, where logged with the request's
// context) carry the method and the request's network and endpoint.
// decode reads a request body into a new Req; an empty body is the zero
// request (Docker sends none for some calls).
func decode[Req any](w http.ResponseWriter, hr *http.Request) (*Req, []byte, error) {
	req := new(Req)
	body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxBody))
	if err != nil {
		return nil, body, fmt.Errorf("read request: %w", err)
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, req); err != nil {
			return nil, body, fmt.Errorf("decode request: %w", err)
		}
	}
	return req, body, nil
}

func route[Req, Resp any](r *mux.Router, f *front, path string, fn func(context.Context, *Req) (Resp, error)) {
	method := path[1:]
	r.Methods(http.MethodPost).Path(path).HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		ctx, clock := observe.WithExecClock(hr.Context())
		attrs := []slog.Attr{slog.String("method", method)}
		rlog := f.log.With("method", method)
		result := ResultError
		defer func() {
			if p := recover(); p != nil {
				rlog.ErrorContext(ctx, "handler panic", "panic", p, "stack", string(debug.Stack()))
				writeErr(w, http.StatusInternalServerError, fmt.Errorf("internal error in docker-cni (%v); see its log", p))
			}
			f.obs.Served(method, result, time.Since(start), clock.Total())
		}()
		req, body, err := decode[Req](w, hr)
		if err != nil {
			result = ResultBadRequest
			rlog.WarnContext(ctx, "bad request", "err", err)
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		about := requestAttrs(req)
		attrs = append(attrs, about...)
		rlog = rlog.With(attrsAsAny(about)...)
		ctx = observe.WithLogAttrs(ctx, attrs...)
		// A handler runs to completion even when Docker gave up waiting
		// (its 30 s) or the connection broke: what it does is recorded, so
		// the next call (a retry, or teardown) finds it; stopping half way
		// would leave things half made.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), HandlerTimeout)
		defer cancel()
		resp, err := fn(hctx, req)
		var bad cnm.BadRequest
		if errors.As(err, &bad) {
			result = ResultBadRequest
			rlog.WarnContext(ctx, "bad request", "err", err, "request", string(body))
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		if err != nil {
			rlog.ErrorContext(ctx, "request failed", "err", err, "duration", time.Since(start), "cni_exec", clock.Total())
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		result = ResultOK
		rlog.DebugContext(ctx, "request done", "duration", time.Since(start), "cni_exec", clock.Total(), "cni_runs", clock.Runs(), "request", string(body))
		if v := reflect.ValueOf(resp); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			writeJSON(w, http.StatusOK, struct{}{})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

// requestAttrs are the log attributes naming what a request is about: its
// network, endpoint and pool, where it has them (IDs cut to 12 characters,
// as Docker shows them).
func requestAttrs(req any) []slog.Attr {
	v := reflect.ValueOf(req)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []slog.Attr
	for _, f := range []struct {
		field, key string
		short      bool
	}{{"NetworkID", "network", true}, {"EndpointID", "endpoint", true}, {"PoolID", "pool", false}} {
		fv := v.FieldByName(f.field)
		if !fv.IsValid() || fv.Kind() != reflect.String || fv.String() == "" {
			continue
		}
		val := fv.String()
		if f.short { // Docker IDs, shown as Docker shows them; pool IDs whole
			val = shortID(val)
		}
		out = append(out, slog.String(f.key, val))
	}
	return out
}

func attrsAsAny(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for i, a := range attrs {
		out[i] = a
	}
	return out
}

// shortID cuts an ID to the 12 characters Docker shows.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// errorEnvelope carries both spellings: network replies use Err, IPAM
// replies Error; Docker decodes any non-200 reply's Err.
type errorEnvelope struct {
	Err   string
	Error string
}

func writeErr(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, errorEnvelope{Err: err.Error(), Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(errorEnvelope{Err: "encode reply: " + err.Error()})
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", cnm.DefaultContentType)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
