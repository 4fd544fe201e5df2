package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/go-plugins-helpers/network"

	"github.com/docker-cni/docker-cni/cnm"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/server"
)

// served is one report to the observer.
type served struct {
	Method, Result string
	Took, Exec     time.Duration
}

type recordingObserver struct {
	mu  sync.Mutex
	got []served
}

func (o *recordingObserver) Served(method, result string, took, exec time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, served{method, result, took, exec})
}

// execJoin is a driver whose Join reports plugin execs of 30 ms and 20 ms
// into the request's clock (as cnirun does) and logs with the request's
// context (as the driver does).
type execJoin struct {
	*fakeNet
	log *slog.Logger
}

func (e execJoin) Join(ctx context.Context, req *network.JoinRequest) (*cnm.JoinResponse, error) {
	observe.AddExec(ctx, 30*time.Millisecond)
	observe.AddExec(ctx, 20*time.Millisecond)
	e.log.InfoContext(ctx, "joined", "network", "from-driver")
	return e.fakeNet.Join(ctx, req)
}

// TestObserver: every call is reported with its method, result and the
// plugin exec time its handler added up; the driver's log lines made with
// the request's context carry its method, network and endpoint.
func TestObserver(t *testing.T) {
	rec, nd, id := newFakes()
	var logs bytes.Buffer
	log := slog.New(observe.LogHandler(slog.NewJSONHandler(&logs, nil)))
	obs := &recordingObserver{}
	h := server.New(execJoin{nd, log}, id, log, server.WithObserver(obs))
	rec.errs[cnm.PathLeave] = errors.New("cni DEL: boom")
	rec.errs[cnm.PathCreateEndpoint] = cnm.MissingID("create endpoint", "no ID")
	rec.panics[cnm.PathDeleteEndpoint] = "kaboom"

	post(t, h, cnm.PathActivate, "")
	post(t, h, cnm.PathJoin, `{"NetworkID":"n0123456789abcdef","EndpointID":"e0123456789abcdef","SandboxKey":"/x"}`)
	post(t, h, cnm.PathLeave, `{"NetworkID":"n1","EndpointID":"e1"}`)
	post(t, h, cnm.PathCreateEndpoint, `{}`)
	post(t, h, cnm.PathDeleteEndpoint, `{"NetworkID":"n1","EndpointID":"e1"}`)
	post(t, h, cnm.PathRequestPool, `{bad json`)

	want := []served{
		{"Plugin.Activate", server.ResultOK, 0, 0},
		{"NetworkDriver.Join", server.ResultOK, 0, 50 * time.Millisecond},
		{"NetworkDriver.Leave", server.ResultError, 0, 0},
		{"NetworkDriver.CreateEndpoint", server.ResultBadRequest, 0, 0},
		{"NetworkDriver.DeleteEndpoint", server.ResultError, 0, 0},
		{"IpamDriver.RequestPool", server.ResultBadRequest, 0, 0},
	}
	if len(obs.got) != len(want) {
		t.Fatalf("observer got %d reports, want %d: %+v", len(obs.got), len(want), obs.got)
	}
	for i, w := range want {
		g := obs.got[i]
		if g.Method != w.Method || g.Result != w.Result || g.Exec != w.Exec || g.Took <= 0 {
			t.Errorf("report %d = %+v, want %s %s with exec %v and a duration", i, g, w.Method, w.Result, w.Exec)
		}
	}

	var joined map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if r["msg"] == "joined" {
			joined = r
		}
	}
	// The driver's own network attribute wins over the request's.
	for k, v := range map[string]string{"method": "NetworkDriver.Join", "network": "from-driver", "endpoint": "e0123456789a"} {
		if joined[k] != v {
			t.Errorf("driver's log line: %s = %v, want %s\n%s", k, joined[k], v, logs.String())
		}
	}
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Count(l, `"network":`) > 1 || strings.Count(l, `"method":`) > 1 {
			t.Errorf("a key twice in a log line: %s", l)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"request failed","method":"NetworkDriver.Leave","network":"n1","endpoint":"e1"`) {
		t.Errorf("the failed request's line lacks its method, network and endpoint:\n%s", logs.String())
	}
}
