package admin

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// NetworkView is a network record as the API shows it: the record's own
// fields (Docker network ID <-> CNI network, conflist, bridge, pools,
// rules) plus what is computed from the other tables.
type NetworkView struct {
	*state.Network
	// Subnets are the network's pools' subnets.
	Subnets []string
	// EndpointCount counts the network's endpoints; Joined those with a
	// CNI attachment.
	EndpointCount int
	Joined        int
	// Engine is the engine of the daemon's --docker-host that has the
	// network, asked when the view is served; "" when none said so (an
	// engine did not answer, or the state was read without a daemon).
	Engine string `json:",omitempty"`
}

// EndpointView is an endpoint record as the API shows it: the record's own
// fields (container, addresses, and under Attachment the CNI attachment
// with the cached CNI result) plus its network's CNI side, decoded
// published ports and its state.
type EndpointView struct {
	*state.Endpoint
	CNINetwork string
	CNIVersion string
	// State is joined, created or leftover.
	State string
	// Ports are the published port mappings.
	Ports []translate.PortMapping
}

// Endpoint states.
const (
	StateJoined   = "joined"
	StateCreated  = "created"
	StateLeftover = "leftover"
)

// Tables are the state tables the API lists, by name. networks and
// endpoints are views (the records' fields and more), pools and
// reservations the records as stored.
var Tables = map[string]func(*state.Tx) (any, error){
	"networks":     func(tx *state.Tx) (any, error) { return Networks(tx) },
	"endpoints":    func(tx *state.Tx) (any, error) { return Endpoints(tx) },
	"pools":        func(tx *state.Tx) (any, error) { return tx.Pools() },
	"reservations": func(tx *state.Tx) (any, error) { return tx.Reservations() },
}

// Networks lists every network as a view.
func Networks(tx *state.Tx) ([]NetworkView, error) {
	nws, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	out := make([]NetworkView, 0, len(nws))
	for _, nw := range nws {
		v := NetworkView{Network: nw}
		for _, id := range nw.PoolIDs {
			if p, err := tx.Pool(id); err == nil {
				v.Subnets = append(v.Subnets, p.Subnet)
			}
		}
		eps, err := tx.EndpointsOf(nw.ID)
		if err != nil {
			return nil, err
		}
		v.EndpointCount = len(eps)
		for _, ep := range eps {
			if ep.Attachment != nil {
				v.Joined++
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// Endpoints lists every endpoint as a view.
func Endpoints(tx *state.Tx) ([]EndpointView, error) {
	eps, err := tx.Endpoints()
	if err != nil {
		return nil, err
	}
	nws := map[string]*state.Network{}
	out := make([]EndpointView, 0, len(eps))
	for _, ep := range eps {
		nw, ok := nws[ep.NetworkID]
		if !ok {
			if nw, err = tx.Network(ep.NetworkID); err != nil {
				nw = nil
			}
			nws[ep.NetworkID] = nw
		}
		out = append(out, endpointView(ep, nw))
	}
	return out, nil
}

// Endpoint finds the endpoint whose ID is id or starts with it.
func Endpoint(tx *state.Tx, id string) (EndpointView, error) {
	if id == "" {
		return EndpointView{}, fmt.Errorf("no endpoint ID: %w", ErrNotFound)
	}
	ep, err := tx.Endpoint(id)
	if err != nil {
		eps, lerr := tx.Endpoints()
		if lerr != nil {
			return EndpointView{}, lerr
		}
		var found []*state.Endpoint
		for _, e := range eps {
			if strings.HasPrefix(e.ID, id) {
				found = append(found, e)
			}
		}
		switch len(found) {
		case 0:
			return EndpointView{}, fmt.Errorf("endpoint %q: %w", id, ErrNotFound)
		case 1:
			ep = found[0]
		default:
			return EndpointView{}, fmt.Errorf("endpoint %q: %w: %d endpoints start with it", id, ErrAmbiguous, len(found))
		}
	}
	nw, err := tx.Network(ep.NetworkID)
	if err != nil {
		nw = nil
	}
	return endpointView(ep, nw), nil
}

func endpointView(ep *state.Endpoint, nw *state.Network) EndpointView {
	v := EndpointView{Endpoint: ep, State: StateCreated}
	if nw != nil {
		v.CNINetwork, v.CNIVersion = nw.CNINetwork, nw.CNIVersion
	}
	if a := ep.Attachment; a != nil {
		v.State = StateJoined
		if len(a.Published) > 0 {
			json.Unmarshal(a.Published, &v.Ports)
		}
	}
	if ep.Leftover != "" {
		v.State = StateLeftover
	}
	return v
}

// ContainerEndpoints are the endpoints of a container, named as `docker`
// takes it: its name, or its ID or a prefix of it; failing those, an
// endpoint ID or prefix. Sorted by network.
func ContainerEndpoints(all []EndpointView, container string) []EndpointView {
	container = strings.TrimPrefix(container, "/")
	if container == "" {
		return nil
	}
	var out []EndpointView
	for _, match := range []func(EndpointView) bool{
		func(e EndpointView) bool { return e.Name == container },
		func(e EndpointView) bool { return e.ContainerID != "" && strings.HasPrefix(e.ContainerID, container) },
		func(e EndpointView) bool { return strings.HasPrefix(e.ID, container) },
	} {
		for _, e := range all {
			if e.Endpoint != nil && match(e) {
				out = append(out, e)
			}
		}
		if len(out) > 0 {
			break
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].NetworkID < out[j].NetworkID })
	return out
}
