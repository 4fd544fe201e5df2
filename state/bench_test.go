package state_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/docker-cni/docker-cni/state"
)

// perNetwork is how many endpoints each benchmark network has, so that the
// answer of EndpointsOf stays one size as the store grows.
const perNetwork = 10

// BenchmarkState times one Update or View against stores that already hold
// n endpoints, each with a reservation in its network's pool and a
// published port on every other one. Puts and lookups should not grow
// with n; PublishedPorts lists every published port, so it does. The
// store is built once per size, outside the sub-benchmarks, and b.Loop
// times only its loop (it resets the timer on its first call).
func BenchmarkState(b *testing.B) {
	for _, st := range stores {
		for _, n := range []int{1, 100, 1000, 5000} {
			b.Run(fmt.Sprintf("%s/records=%d", st.name, n), func(b *testing.B) {
				s := st.open(b)
				fill(b, s, n)
				benchOps(b, s, n)
			})
		}
	}
}

func benchOps(b *testing.B, s *state.Store, n int) {
	b.Run("PutEndpoint", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e := benchEndpoint(i%n, 20000+i%1000)
			if err := s.Update(func(tx *state.Tx) error { return tx.PutEndpoint(e) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Endpoint", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			benchView(b, s, func(tx *state.Tx) (int, error) {
				_, err := tx.Endpoint(benchID(i % n))
				return 1, err
			})
		}
	})
	b.Run("EndpointsOf", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			benchView(b, s, func(tx *state.Tx) (int, error) {
				es, err := tx.EndpointsOf(benchNetwork(i % n))
				return len(es), err
			})
		}
	})
	b.Run("ReservationsAt", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			benchView(b, s, func(tx *state.Tx) (int, error) {
				rs, err := tx.ReservationsAt(benchAddr(i % n))
				return len(rs), err
			})
		}
	})
	b.Run("PublishedPorts", func(b *testing.B) {
		for b.Loop() {
			benchView(b, s, func(tx *state.Tx) (int, error) {
				ps, err := tx.PublishedPorts()
				return len(ps), err
			})
		}
	})
}

// benchView runs fn in a View and fails b unless it found something.
func benchView(b *testing.B, s *state.Store, fn func(*state.Tx) (int, error)) {
	err := s.View(func(tx *state.Tx) error {
		found, err := fn(tx)
		if err == nil && found == 0 {
			err = fmt.Errorf("found nothing")
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// fill puts n endpoints, their networks, pools and reservations in one
// Update.
func fill(b *testing.B, s *state.Store, n int) {
	b.Helper()
	update(b, s, func(tx *state.Tx) error {
		for i := 0; i < n; i++ {
			if i%perNetwork == 0 {
				if err := putBenchNetwork(tx, i); err != nil {
					return err
				}
			}
			r := reservation(benchPool(i), benchAddr(i))
			if err := tx.PutReservation(r); err != nil {
				return err
			}
			if err := tx.PutEndpoint(benchEndpoint(i, 10000+i)); err != nil {
				return err
			}
		}
		return nil
	})
}

func putBenchNetwork(tx *state.Tx, i int) error {
	nw := network(benchNetwork(i))
	p := pool(benchPool(i))
	p.Subnet = fmt.Sprintf("10.%d.%d.0/24", i/perNetwork/256, i/perNetwork%256)
	nw.PoolIDs = []string{p.ID}
	if err := tx.PutPool(p); err != nil {
		return err
	}
	return tx.PutNetwork(nw)
}

func benchID(i int) string      { return fmt.Sprintf("%064x", i) }
func benchNetwork(i int) string { return fmt.Sprintf("n%063x", i/perNetwork) }
func benchPool(i int) string    { return fmt.Sprintf("docker-cni-%d/pool", i/perNetwork) }

func benchAddr(i int) string {
	return fmt.Sprintf("10.%d.%d.%d", i/perNetwork/256, i/perNetwork%256, 2+i%perNetwork)
}

// benchEndpoint is endpoint i; every other one publishes hostPort.
func benchEndpoint(i, hostPort int) *state.Endpoint {
	e := endpoint(benchID(i))
	e.NetworkID = benchNetwork(i)
	e.Attachment.Published = nil
	if i%2 == 0 {
		e.Attachment.Published = json.RawMessage(fmt.Sprintf(`[{"hostPort":%d,"containerPort":80,"protocol":"tcp"}]`, hostPort))
	}
	return e
}
