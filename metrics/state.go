package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// Endpoint states, as the docker_cni_endpoints gauge labels them.
const (
	// StateJoined: the endpoint has a CNI attachment (ADD ran).
	StateJoined = "joined"
	// StateCreated: created, not joined (or left).
	StateCreated = "created"
	// StateLeftover: its teardown failed and is being retried.
	StateLeftover = "leftover"
)

var (
	networksDesc = prometheus.NewDesc(namespace+"_networks",
		"Docker networks served by docker-cni, by kind (bound to a conflist of the conf dir, or generated).",
		[]string{"kind"}, nil)
	endpointsDesc = prometheus.NewDesc(namespace+"_endpoints",
		"Endpoints docker-cni holds, by Docker network (ID cut to 12), CNI network and state (joined, created, leftover).",
		[]string{"network", "cni_network", "state"}, nil)
	reservationsDesc = prometheus.NewDesc(namespace+"_reservations",
		"Addresses docker-cni holds in CNI IPAM stores, by Docker network (\"\" for a pool no network claims) and CNI network.",
		[]string{"network", "cni_network"}, nil)
	intentsDesc = prometheus.NewDesc(namespace+"_reservation_intents",
		"Reservations in flight or left unfinished (undone by the next reconcile pass once old enough).",
		nil, nil)
)

// stateCollector computes the state gauges from the store at each scrape,
// in one read transaction, so they are never out of step with the records.
type stateCollector struct {
	store *state.Store
}

func newStateCollector(store *state.Store) *stateCollector { return &stateCollector{store: store} }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- networksDesc
	ch <- endpointsDesc
	ch <- reservationsDesc
	ch <- intentsDesc
}

// counts are the gauges' values read from one transaction.
type counts struct {
	networks     map[string]float64
	endpoints    map[[3]string]float64
	reservations map[[2]string]float64
	intents      float64
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n, err := c.read()
	if err != nil {
		for _, d := range []*prometheus.Desc{networksDesc, endpointsDesc, reservationsDesc, intentsDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	for kind, v := range n.networks {
		ch <- prometheus.MustNewConstMetric(networksDesc, prometheus.GaugeValue, v, kind)
	}
	for k, v := range n.endpoints {
		ch <- prometheus.MustNewConstMetric(endpointsDesc, prometheus.GaugeValue, v, k[0], k[1], k[2])
	}
	for k, v := range n.reservations {
		ch <- prometheus.MustNewConstMetric(reservationsDesc, prometheus.GaugeValue, v, k[0], k[1])
	}
	ch <- prometheus.MustNewConstMetric(intentsDesc, prometheus.GaugeValue, n.intents)
}

func (c *stateCollector) read() (counts, error) {
	n := counts{
		networks:     map[string]float64{"bound": 0, "generated": 0},
		endpoints:    map[[3]string]float64{},
		reservations: map[[2]string]float64{},
	}
	err := c.store.View(func(tx *state.Tx) error {
		nws, err := tx.Networks()
		if err != nil {
			return err
		}
		cniName := map[string]string{}
		for _, nw := range nws {
			cniName[nw.ID] = nw.CNINetwork
			kind := "generated"
			if nw.Bound {
				kind = "bound"
			}
			n.networks[kind]++
			// Every state of every network shows, at 0 if need be.
			for _, st := range []string{StateJoined, StateCreated, StateLeftover} {
				n.endpoints[[3]string{translate.ShortID(nw.ID), nw.CNINetwork, st}] = 0
			}
		}
		eps, err := tx.Endpoints()
		if err != nil {
			return err
		}
		for _, ep := range eps {
			n.endpoints[[3]string{translate.ShortID(ep.NetworkID), cniName[ep.NetworkID], endpointState(ep)}]++
		}
		pools, err := tx.Pools()
		if err != nil {
			return err
		}
		poolOf := map[string]*state.Pool{}
		for _, p := range pools {
			poolOf[p.ID] = p
		}
		rs, err := tx.Reservations()
		if err != nil {
			return err
		}
		for _, r := range rs {
			var key [2]string
			if p := poolOf[r.PoolID]; p != nil {
				key[1] = p.CNINetwork
				if _, ok := cniName[p.NetworkID]; ok {
					key[0] = translate.ShortID(p.NetworkID)
				}
			}
			n.reservations[key]++
		}
		ins, err := tx.Intents()
		n.intents = float64(len(ins))
		return err
	})
	return n, err
}

// endpointState is the state an endpoint record is in.
func endpointState(ep *state.Endpoint) string {
	switch {
	case ep.Leftover != "":
		return StateLeftover
	case ep.Attachment != nil:
		return StateJoined
	}
	return StateCreated
}
