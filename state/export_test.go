package state

import (
	"fmt"
	"reflect"
)

// allBuckets are the buckets a Store may hold.
var allBuckets = []string{
	bucketPools, bucketNetworks, bucketEndpoints, bucketReservations, bucketMeta,
	indexPoolsBySubnet, indexEndpointsByNetwork, indexReservationsByPool, indexReservationsByAddress, indexPorts,
}

// Dump returns every key and value of every bucket, for tests that check
// a transaction changed nothing.
func Dump(s *Store) (map[string]map[string]string, error) {
	var out map[string]map[string]string
	err := s.View(func(tx *Tx) error {
		var err error
		out, err = dump(tx.kv, allBuckets)
		return err
	})
	return out, err
}

func dump(k kv, buckets []string) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	for _, b := range buckets {
		err := k.scan(b, "", func(key string, val []byte) error {
			if out[b] == nil {
				out[b] = map[string]string{}
			}
			out[b][key] = string(val)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// CheckIndexes says whether the index buckets hold exactly the entries
// the stored records call for.
func CheckIndexes(s *Store) error {
	return s.View(func(tx *Tx) error {
		want := map[string]map[string]string{}
		if err := wantEntries(tx.kv, poolTable, want); err != nil {
			return err
		}
		if err := wantEntries(tx.kv, endpointTable, want); err != nil {
			return err
		}
		if err := wantEntries(tx.kv, reservationTable, want); err != nil {
			return err
		}
		indexes := allBuckets[5:]
		got, err := dump(tx.kv, indexes)
		if err != nil {
			return err
		}
		for _, b := range indexes {
			if !reflect.DeepEqual(got[b], want[b]) {
				return fmt.Errorf("index %s holds %q, want %q", b, got[b], want[b])
			}
		}
		return nil
	})
}

func wantEntries[T any](k kv, t table[T], want map[string]map[string]string) error {
	return k.scan(t.bucket, "", func(key string, val []byte) error {
		rec, err := t.decode(key, val)
		if err != nil {
			return err
		}
		es, err := t.index(key, rec)
		for _, e := range es {
			if want[e.bucket] == nil {
				want[e.bucket] = map[string]string{}
			}
			want[e.bucket][e.key] = e.target
		}
		return err
	})
}

// PutRaw stores val under key in bucket as it is, for tests of records
// that do not decode.
func PutRaw(s *Store, bucket, key string, val []byte) error {
	return s.Update(func(tx *Tx) error { return tx.kv.put(bucket, key, val) })
}
