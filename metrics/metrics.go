// Package metrics is docker-cni's Prometheus side: it implements the small
// observer interfaces of server (plugin calls), cnirun (plugin execs) and
// observe (reconcile actions) with Prometheus collectors, computes the
// per-network gauges from the state at scrape time, and serves the text
// exposition format. It is the only package that imports Prometheus; it
// does not change state or touch the network.
package metrics

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docker-cni/docker-cni/cnirun"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/server"
	"github.com/docker-cni/docker-cni/state"
)

const namespace = "docker_cni"

// durationBuckets spans a fast call (a capabilities query, under a
// millisecond) to a plugin run killed at --cni-timeout (20 s) and Docker's
// 30 s.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30}

// Metrics holds docker-cni's collectors in a registry of its own.
type Metrics struct {
	reg      *prometheus.Registry
	calls    *prometheus.HistogramVec
	overhead *prometheus.HistogramVec
	execs    *prometheus.HistogramVec
	actions  *prometheus.CounterVec
	leaks    *prometheus.CounterVec
	passes   *prometheus.CounterVec
}

var (
	_ server.Observer = (*Metrics)(nil)
	_ cnirun.Observer = (*Metrics)(nil)
	_ observe.Counter = (*Metrics)(nil)
)

// New returns docker-cni's metrics; the state gauges are read from store
// at each scrape. version is exported as docker_cni_build_info.
func New(store *state.Store, version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "plugin_call_duration_seconds",
			Help:    "Docker's calls to the network and IPAM driver, by method and result (ok, bad_request, error): time from request to reply. _count is the number of calls.",
			Buckets: durationBuckets,
		}, []string{"method", "result"}),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "plugin_call_overhead_seconds",
			Help:    "docker-cni's own time per call: the call's duration minus the time its CNI plugin execs took.",
			Buckets: durationBuckets,
		}, []string{"method", "result"}),
		execs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cni_exec_duration_seconds",
			Help:    "CNI plugin execs by plugin type, CNI command (ADD, DEL, VERSION, ...) and result (ok, error).",
			Buckets: durationBuckets,
		}, []string{"plugin", "command", "result"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconcile_actions_total",
			Help: "What reconcile passes and sweeps did, by kind: " + kindList() + ".",
		}, []string{"kind"}),
		leaks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "leaks_found_total",
			Help: "Things docker-cni made that no record knew any more (a crash, a failed release), found and removed, by kind.",
		}, []string{"kind"}),
		passes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "reconcile_passes_total",
			Help: "Reconcile passes, by trigger (loop, gc) and result (ok, error).",
		}, []string{"trigger", "result"}),
	}
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info", Help: "docker-cni's version; always 1.",
	}, []string{"version"})
	info.WithLabelValues(version).Set(1)
	m.reg.MustRegister(m.calls, m.overhead, m.execs, m.actions, m.leaks, m.passes, info,
		newStateCollector(store),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every kind shows from the start, at 0, so rate() and increase()
	// see the first one.
	for _, k := range observe.Kinds {
		m.actions.WithLabelValues(k)
		if observe.Leak(k) {
			m.leaks.WithLabelValues(k)
		}
	}
	return m
}

func kindList() string { return strings.Join(observe.Kinds, ", ") }

// Handler serves the metrics in Prometheus' text format. A state that
// cannot be read leaves its gauges out and the rest is served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is the registry the metrics are in, for tests and for adding
// collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Served records one plugin call (server.Observer).
func (m *Metrics) Served(method, result string, took, cniExec time.Duration) {
	m.calls.WithLabelValues(method, result).Observe(took.Seconds())
	m.overhead.WithLabelValues(method, result).Observe(max(took-cniExec, 0).Seconds())
}

// PluginExec records one plugin exec (cnirun.Observer).
func (m *Metrics) PluginExec(plugin, command string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.execs.WithLabelValues(plugin, command, result).Observe(took.Seconds())
}

// Add counts one reconcile action (observe.Counter), and a leak found when
// the kind is one.
func (m *Metrics) Add(kind string) {
	m.actions.WithLabelValues(kind).Inc()
	if observe.Leak(kind) {
		m.leaks.WithLabelValues(kind).Inc()
	}
}

// Pass counts one reconcile pass.
func (m *Metrics) Pass(trigger string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.passes.WithLabelValues(trigger, result).Inc()
}
