package state_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

// indexed is what every index query answers, for comparing against want.
type indexed struct {
	onSubnet  map[string][]string // subnet -> pool IDs
	of        map[string][]string // network ID -> endpoint IDs
	in        map[string][]string // pool ID -> reservation keys
	at        map[string][]string // address -> reservation keys
	published map[state.HostPort]string
}

// query asks every index about the values of want and checks the answers.
func query(t *testing.T, s *state.Store, want indexed) {
	t.Helper()
	view(t, s, func(tx *state.Tx) error {
		var errs []error
		for subnet, w := range want.onSubnet {
			ps, err := tx.PoolsOnSubnet(subnet)
			errs = append(errs, err)
			check(t, "PoolsOnSubnet("+subnet+")", ids(ps, poolID), w)
		}
		for nw, w := range want.of {
			es, err := tx.EndpointsOf(nw)
			errs = append(errs, err)
			check(t, "EndpointsOf("+nw+")", ids(es, endpointID), w)
		}
		for p, w := range want.in {
			rs, err := tx.ReservationsIn(p)
			errs = append(errs, err)
			check(t, "ReservationsIn("+p+")", ids(rs, reservationKey), w)
		}
		for a, w := range want.at {
			rs, err := tx.ReservationsAt(a)
			errs = append(errs, err)
			check(t, "ReservationsAt("+a+")", ids(rs, reservationKey), w)
		}
		got, err := tx.PublishedPorts()
		if want.published != nil && !reflect.DeepEqual(got, want.published) {
			t.Errorf("PublishedPorts = %v, want %v", got, want.published)
		}
		return errors.Join(append(errs, err)...)
	})
	checkIndexes(t, s)
}

func check(t *testing.T, what string, got, want []string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func poolOn(id, subnet string) *state.Pool {
	p := pool(id)
	p.Subnet = subnet
	return p
}

func endpointOn(id, nw, published string) *state.Endpoint {
	e := endpoint(id)
	e.NetworkID = nw
	e.Attachment.Published = json.RawMessage(published)
	if published == "" {
		e.Attachment = nil
	}
	return e
}

func TestPoolsOnSubnet(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.PutPool(poolOn("b|x", "10.1.0.0/24")), tx.PutPool(poolOn("a", "10.1.0.0/24")),
				tx.PutPool(poolOn("c", "10.1.0.0/16")), tx.PutPool(poolOn("d", "")))
		})
		query(t, s, indexed{onSubnet: map[string][]string{
			"10.1.0.0/24": {"a", "b|x"}, "10.1.0.0/16": {"c"}, "10.1.0.0": nil, "": {"d"},
		}})
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.PutPool(poolOn("a", "10.1.0.0/16")), tx.DeletePool("b|x"))
		})
		query(t, s, indexed{onSubnet: map[string][]string{
			"10.1.0.0/24": nil, "10.1.0.0/16": {"a", "c"}, "": {"d"},
		}})
	})
}

func TestEndpointsOf(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.PutEndpoint(endpointOn("e2", "n1", "")), tx.PutEndpoint(endpointOn("e1", "n1", "")),
				tx.PutEndpoint(endpointOn("e3", "n1x", "")), tx.PutEndpoint(endpointOn("e/4", "n/2", "")))
		})
		query(t, s, indexed{of: map[string][]string{"n1": {"e1", "e2"}, "n1x": {"e3"}, "n/2": {"e/4"}, "n": nil}})
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.PutEndpoint(endpointOn("e1", "n/2", "")), tx.DeleteEndpoint("e3"))
		})
		query(t, s, indexed{of: map[string][]string{"n1": {"e2"}, "n1x": nil, "n/2": {"e/4", "e1"}}})
	})
}

// TestReservationIndexes uses pool IDs one of which is a prefix of another
// up to a '|', the separator of reservation keys.
func TestReservationIndexes(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.PutReservation(reservation("p", "10.0.0.5")), tx.PutReservation(reservation("p|10.0.0.5", "10.0.0.6")),
				tx.PutReservation(reservation("p a", "10.0.0.5")), tx.PutReservation(reservation("p", "10.0.0.50")),
				tx.PutReservation(reservation("q", "fd00::5")))
		})
		query(t, s, indexed{
			in: map[string][]string{"p": {"p|10.0.0.5", "p|10.0.0.50"}, "p|10.0.0.5": {"p|10.0.0.5|10.0.0.6"}, "p a": {"p a|10.0.0.5"}, "x": nil},
			at: map[string][]string{"10.0.0.5": {"p a|10.0.0.5", "p|10.0.0.5"}, "10.0.0.50": {"p|10.0.0.50"}, "fd00::5": {"q|fd00::5"}, "10.0.0": nil},
		})
		update(t, s, func(tx *state.Tx) error {
			r := reservation("p", "10.0.0.5")
			r.Name = "renamed"
			return errors.Join(tx.PutReservation(r), tx.DeleteReservation("p a", "10.0.0.5"), tx.DeleteReservation("q", "fd00::5"))
		})
		query(t, s, indexed{
			in: map[string][]string{"p": {"p|10.0.0.5", "p|10.0.0.50"}, "p a": nil, "q": nil},
			at: map[string][]string{"10.0.0.5": {"p|10.0.0.5"}, "fd00::5": nil},
		})
	})
}

func TestPublishedPorts(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		query(t, s, indexed{published: map[state.HostPort]string{}})
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(
				tx.PutEndpoint(endpointOn("e1", "n", `[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"},
					{"hostPort":8080,"containerPort":80,"protocol":"udp"}]`)),
				tx.PutEndpoint(endpointOn("e2", "n", `[{"hostPort":53,"containerPort":53,"protocol":"udp","hostIP":"::1"}]`)),
				tx.PutEndpoint(endpointOn("e3", "n", `[]`)),
				tx.PutEndpoint(endpointOn("e4", "n", "")))
		})
		query(t, s, indexed{published: map[state.HostPort]string{
			{"tcp", "127.0.0.1", 8080}: "e1", {"udp", "", 8080}: "e1", {"udp", "::1", 53}: "e2",
		}})
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(
				tx.PutEndpoint(endpointOn("e1", "n", `[{"hostPort":8080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"}]`)),
				tx.PutEndpoint(endpointOn("e2", "n", "")),
				tx.PutEndpoint(endpointOn("e3", "n", `[{"hostPort":9000,"containerPort":90,"protocol":"sctp"}]`)))
		})
		query(t, s, indexed{published: map[state.HostPort]string{
			{"tcp", "127.0.0.1", 8080}: "e1", {"sctp", "", 9000}: "e3",
		}})
		update(t, s, func(tx *state.Tx) error { return tx.DeleteEndpoint("e1") })
		query(t, s, indexed{published: map[state.HostPort]string{{"sctp", "", 9000}: "e3"}})
	})
}
