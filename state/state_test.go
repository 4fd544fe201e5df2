package state_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// putAwkward stores one record of every kind for every awkward ID.
func putAwkward(t *testing.T, s *state.Store) {
	t.Helper()
	update(t, s, func(tx *state.Tx) error {
		for _, id := range awkwardIDs {
			if err := tx.PutPool(pool(id)); err != nil {
				return err
			}
			if err := tx.PutNetwork(network(id)); err != nil {
				return err
			}
			if err := tx.PutEndpoint(endpoint(id)); err != nil {
				return err
			}
			if err := tx.PutReservation(reservation(id, "fe80::1%eth0")); err != nil {
				return err
			}
		}
		return nil
	})
}

func TestRoundTrip(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		putAwkward(t, s)
		view(t, s, func(tx *state.Tx) error {
			for _, id := range awkwardIDs {
				p, err := tx.Pool(id)
				if err != nil {
					return err
				}
				same(t, p, pool(id))
				n, err := tx.Network(id)
				if err != nil {
					return err
				}
				same(t, n, network(id))
				e, err := tx.Endpoint(id)
				if err != nil {
					return err
				}
				same(t, e, endpoint(id))
				if !e.Created.Equal(created) || e.Attachment.Args[0] != [2]string{"IgnoreUnknown", "1"} {
					t.Errorf("endpoint %q lost its time or args: %+v", id, e)
				}
				r, err := tx.Reservation(id, "fe80::1%eth0")
				if err != nil {
					return err
				}
				want := reservation(id, "fe80::1%eth0")
				want.Key = id + "|fe80::1%eth0"
				same(t, r, want)
			}
			return nil
		})
		checkIndexes(t, s)
	})
}

func TestListsInKeyOrder(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		view(t, s, func(tx *state.Tx) error {
			ps, err := tx.Pools()
			if len(ps) != 0 {
				t.Errorf("Pools of an empty store = %v", ids(ps, poolID))
			}
			return err
		})
		putAwkward(t, s)
		want := sorted(awkwardIDs)
		var keys []string
		for _, id := range awkwardIDs {
			keys = append(keys, id+"|fe80::1%eth0")
		}
		view(t, s, func(tx *state.Tx) error {
			ps, err1 := tx.Pools()
			ns, err2 := tx.Networks()
			es, err3 := tx.Endpoints()
			rs, err4 := tx.Reservations()
			for name, got := range map[string][]string{
				"Pools": ids(ps, poolID), "Networks": ids(ns, networkID), "Endpoints": ids(es, endpointID),
			} {
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := ids(rs, reservationKey); !reflect.DeepEqual(got, sorted(keys)) {
				t.Errorf("Reservations = %q, want %q", got, sorted(keys))
			}
			return errors.Join(err1, err2, err3, err4)
		})
	})
}

func TestMissingRecords(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		update(t, s, func(tx *state.Tx) error { return tx.PutPool(pool("p/1")) })
		view(t, s, func(tx *state.Tx) error {
			for _, id := range append([]string{"missing", "", "p/1\x00"}, awkwardIDs...) {
				p, err := tx.Pool(id)
				n, err2 := tx.Network(id)
				e, err3 := tx.Endpoint(id)
				r, err4 := tx.Reservation(id, "10.99.0.2")
				for _, err := range []error{err, err2, err3, err4} {
					if !errors.Is(err, state.ErrNotFound) {
						t.Errorf("get of missing %q: %v, want ErrNotFound", id, err)
					}
				}
				if p != nil || n != nil || e != nil || r != nil {
					t.Errorf("get of missing %q returned a record", id)
				}
			}
			return nil
		})
	})
}

func TestDelete(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		putAwkward(t, s)
		gone := awkwardIDs[2]
		for i := 0; i < 2; i++ {
			update(t, s, func(tx *state.Tx) error {
				return errors.Join(tx.DeletePool(gone), tx.DeleteNetwork(gone), tx.DeleteEndpoint(gone),
					tx.DeleteReservation(gone, "fe80::1%eth0"))
			})
		}
		update(t, s, func(tx *state.Tx) error {
			return errors.Join(tx.DeletePool("never"), tx.DeleteNetwork("never"), tx.DeleteEndpoint("never"),
				tx.DeleteReservation("never", "10.0.0.1"))
		})
		want := sorted(slices.DeleteFunc(slices.Clone(awkwardIDs), func(id string) bool { return id == gone }))
		view(t, s, func(tx *state.Tx) error {
			ps, err := tx.Pools()
			if got := ids(ps, poolID); !reflect.DeepEqual(got, want) {
				t.Errorf("Pools after delete = %q, want %q", got, want)
			}
			if _, err := tx.Endpoint(gone); !errors.Is(err, state.ErrNotFound) {
				t.Errorf("Endpoint after delete: %v", err)
			}
			if _, err := tx.Reservation(gone, "fe80::1%eth0"); !errors.Is(err, state.ErrNotFound) {
				t.Errorf("Reservation after delete: %v", err)
			}
			return err
		})
		checkIndexes(t, s)
	})
}

func TestRecordsAreCopies(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		ep := endpoint("e1")
		update(t, s, func(tx *state.Tx) error { return tx.PutEndpoint(ep) })
		ep.Addresses[0] = "changed after put"
		ep.Attachment.Capability["portMappings"] = nil
		view(t, s, func(tx *state.Tx) error {
			got, err := tx.Endpoint("e1")
			if err != nil {
				return err
			}
			same(t, got, endpoint("e1"))
			got.Addresses[0] = "changed after get"
			got.Attachment.Published[0] = 'X'
			again, err := tx.Endpoint("e1")
			same(t, again, endpoint("e1"))
			return err
		})
	})
}

// TestFailedUpdateChangesNothing: an Update whose fn fails, or panics,
// leaves every record and index as it was.
func TestFailedUpdateChangesNothing(t *testing.T) {
	boom := errors.New("boom")
	forEachStore(t, func(t *testing.T, s *state.Store) {
		putAwkward(t, s)
		before := dump(t, s)
		writeAll := func(tx *state.Tx) {
			p := pool(awkwardIDs[0])
			p.Subnet = "10.1.0.0/16"
			e := endpoint(awkwardIDs[1])
			e.NetworkID = "other"
			e.Attachment.Published = json.RawMessage(`[{"hostPort":9090,"protocol":"udp","hostIP":"::1"}]`)
			for _, err := range []error{
				tx.PutPool(p), tx.PutPool(pool("new")), tx.PutEndpoint(e), tx.PutEndpoint(endpoint("new")),
				tx.PutReservation(reservation("new", "10.0.0.9")), tx.PutNetwork(network("new")),
				tx.DeletePool(awkwardIDs[2]), tx.DeleteNetwork(awkwardIDs[3]), tx.DeleteEndpoint(awkwardIDs[4]),
				tx.DeleteReservation(awkwardIDs[5], "fe80::1%eth0"),
			} {
				if err != nil {
					t.Fatalf("write in the doomed update: %v", err)
				}
			}
		}
		err := s.Update(func(tx *state.Tx) error {
			writeAll(tx)
			return boom
		})
		if err != boom {
			t.Errorf("Update returned %v, want fn's error as it was", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Error("a panic in fn did not reach the caller")
				}
			}()
			s.Update(func(tx *state.Tx) error {
				writeAll(tx)
				panic("boom")
			})
		}()
		if after := dump(t, s); !reflect.DeepEqual(after, before) {
			t.Errorf("a failed Update changed the store:\nbefore %q\n after %q", before, after)
		}
		checkIndexes(t, s)
	})
}

func TestViewCannotWrite(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		err := s.View(func(tx *state.Tx) error { return tx.PutPool(pool("p/1")) })
		if err == nil {
			t.Error("PutPool in a View succeeded")
		}
		if d := dump(t, s); len(d["pools"]) != 0 {
			t.Errorf("a View wrote: %q", d)
		}
	})
}

func TestRefusedRecords(t *testing.T) {
	badPorts := endpoint("e1")
	badPorts.Attachment.Published = json.RawMessage(`{"hostPort":8080}`)
	nulNetwork := endpoint("e2")
	nulNetwork.NetworkID = "n\x00"
	nulSubnet := pool("p/1")
	nulSubnet.Subnet = "10.0.0.0/8\x00"
	for name, put := range map[string]func(*state.Tx) error{
		"empty pool id":               func(tx *state.Tx) error { return tx.PutPool(pool("")) },
		"NUL in an id":                func(tx *state.Tx) error { return tx.PutNetwork(network("n\x00")) },
		"NUL in an indexed field":     func(tx *state.Tx) error { return tx.PutEndpoint(nulNetwork) },
		"NUL in a subnet":             func(tx *state.Tx) error { return tx.PutPool(nulSubnet) },
		"published is not an array":   func(tx *state.Tx) error { return tx.PutEndpoint(badPorts) },
		"'|' in an address":           func(tx *state.Tx) error { return tx.PutReservation(reservation("p", "10.0.0.1|x")) },
		"NUL in a reservation's pool": func(tx *state.Tx) error { return tx.PutReservation(reservation("p\x00", "10.0.0.1")) },
	} {
		t.Run(name, func(t *testing.T) {
			forEachStore(t, func(t *testing.T, s *state.Store) {
				before := dump(t, s)
				if err := s.Update(put); err == nil {
					t.Error("put succeeded")
				}
				if after := dump(t, s); !reflect.DeepEqual(after, before) {
					t.Errorf("a refused put left %q", after)
				}
			})
		})
	}
}

// TestUndecodableRecord: a stored record that does not decode is an error
// naming its bucket and key, and can still be replaced or deleted, its
// index entries with it.
func TestUndecodableRecord(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *state.Store) {
		corrupt := func() {
			update(t, s, func(tx *state.Tx) error { return tx.PutEndpoint(endpointOn("e/1", "n1", `[{"hostPort":80}]`)) })
			if err := state.PutRaw(s, "endpoints", "e/1", []byte(`{"ID": 7`)); err != nil {
				t.Fatal(err)
			}
		}
		corrupt()
		err := s.View(func(tx *state.Tx) error { _, err := tx.Endpoint("e/1"); return err })
		err2 := s.View(func(tx *state.Tx) error { _, err := tx.EndpointsOf("n1"); return err })
		for _, err := range []error{err, err2} {
			if err == nil || errors.Is(err, state.ErrNotFound) || !strings.Contains(err.Error(), `endpoint "e/1" in bucket endpoints`) {
				t.Errorf("read of an undecodable record: %v; want an error naming the bucket and key", err)
			}
		}
		update(t, s, func(tx *state.Tx) error { return tx.PutEndpoint(endpointOn("e/1", "n2", "")) })
		query(t, s, indexed{of: map[string][]string{"n1": nil, "n2": {"e/1"}}, published: map[state.HostPort]string{}})
		corrupt()
		update(t, s, func(tx *state.Tx) error { return tx.DeleteEndpoint("e/1") })
		query(t, s, indexed{of: map[string][]string{"n1": nil}, published: map[state.HostPort]string{}})
	})
}
