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

// New returns the plugin's HTTP handler.
func New(nd NetworkDriver, id IPAMDriver, log *slog.Logger) http.Handler {
	r := mux.NewRouter()
	r.Methods(http.MethodPost).Path(cnm.PathActivate).HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, cnm.ActivateResponse{Implements: []string{"NetworkDriver", "IpamDriver"}})
	})
	route(r, log, cnm.PathNetCapabilities, nd.GetCapabilities)
	route(r, log, cnm.PathCreateNetwork, nd.CreateNetwork)
	route(r, log, cnm.PathAllocateNetwork, nd.AllocateNetwork)
	route(r, log, cnm.PathDeleteNetwork, nd.DeleteNetwork)
	route(r, log, cnm.PathFreeNetwork, nd.FreeNetwork)
	route(r, log, cnm.PathCreateEndpoint, nd.CreateEndpoint)
	route(r, log, cnm.PathDeleteEndpoint, nd.DeleteEndpoint)
	route(r, log, cnm.PathEndpointOperInfo, nd.EndpointOperInfo)
	route(r, log, cnm.PathJoin, nd.Join)
	route(r, log, cnm.PathLeave, nd.Leave)
	route(r, log, cnm.PathDiscoverNew, nd.DiscoverNew)
	route(r, log, cnm.PathDiscoverDelete, nd.DiscoverDelete)
	route(r, log, cnm.PathProgramExternalConn, nd.ProgramExternalConnectivity)
	route(r, log, cnm.PathRevokeExternalConn, nd.RevokeExternalConnectivity)
	route(r, log, cnm.PathIpamCapabilities, id.GetCapabilities)
	route(r, log, cnm.PathDefaultAddressSpaces, id.GetDefaultAddressSpaces)
	route(r, log, cnm.PathRequestPool, id.RequestPool)
	route(r, log, cnm.PathReleasePool, id.ReleasePool)
	route(r, log, cnm.PathRequestAddress, id.RequestAddress)
	route(r, log, cnm.PathReleaseAddress, id.ReleaseAddress)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusNotFound, cnm.ErrorResponse{Err: "docker-cni does not implement " + req.URL.Path})
	})
	return r
}

// route registers one typed handler. A request body that does not decode
// is answered 400, a handler error 500 with the error envelope, a panic 500
// without crashing the daemon.
func route[Req, Resp any](r *mux.Router, log *slog.Logger, path string, fn func(context.Context, *Req) (Resp, error)) {
	method := path[1:]
	r.Methods(http.MethodPost).Path(path).HandlerFunc(func(w http.ResponseWriter, hr *http.Request) {
		start := time.Now()
		rlog := log.With("method", method)
		defer func() {
			if p := recover(); p != nil {
				rlog.ErrorContext(hr.Context(), "handler panic", "panic", p, "stack", string(debug.Stack()))
				writeErr(w, http.StatusInternalServerError, fmt.Errorf("internal error in docker-cni (%v); see its log", p))
			}
		}()
		req := new(Req)
		body, err := io.ReadAll(http.MaxBytesReader(w, hr.Body, maxBody))
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("read request: %w", err))
			return
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, req); err != nil {
				rlog.WarnContext(hr.Context(), "bad request", "err", err)
				writeErr(w, http.StatusBadRequest, fmt.Errorf("decode request: %w", err))
				return
			}
		}
		// A handler runs to completion even when Docker gave up waiting
		// (its 30 s) or the connection broke: what it does is recorded, so
		// the next call (a retry, or teardown) finds it; stopping half way
		// would leave things half made.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(hr.Context()), HandlerTimeout)
		defer cancel()
		resp, err := fn(ctx, req)
		var bad cnm.BadRequest
		if errors.As(err, &bad) {
			rlog.WarnContext(hr.Context(), "bad request", "err", err, "request", string(body))
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		if err != nil {
			rlog.ErrorContext(hr.Context(), "request failed", "err", err, "duration", time.Since(start))
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		rlog.DebugContext(hr.Context(), "request done", "duration", time.Since(start), "request", string(body))
		if v := reflect.ValueOf(resp); !v.IsValid() || (v.Kind() == reflect.Pointer && v.IsNil()) {
			writeJSON(w, http.StatusOK, struct{}{})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
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
