package state

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// The meta bucket holds the schema version, as decimal text, under
// schemaKey; a database without it is new.
const (
	schemaKey     = "schema"
	schemaVersion = "1"
)

// checkSchema says whether the database at path has the schema this code
// knows.
func checkSchema(tx *Tx, path string) error {
	v := tx.kv.get(bucketMeta, schemaKey)
	if v == nil {
		return fmt.Errorf("state database %s has no schema version: the Open that made it did not finish", path)
	}
	if string(v) != schemaVersion {
		return fmt.Errorf("state database %s has schema version %q, this docker-cni knows %s", path, v, schemaVersion)
	}
	return nil
}

// instanceKey holds the daemon instance's ID in the meta bucket.
const instanceKey = "instance"

// Instance is the ID of the docker-cni instance this state belongs to,
// made at first use and kept: what the instance marks as its own outside
// its state (host interfaces, owner IDs in CNI IPAM stores) carries it, so
// that two instances on one node (one per engine, as managed plugins run)
// never sweep each other's. A new database takes derive, when given: the
// daemon derives it from where its state dir lives, so that an instance
// whose database was lost gets its ID back and knows its leftovers as its
// own. Without derive (or in a read-only database) the ID is random.
func (s *Store) Instance(derive string) (string, error) {
	var id string
	err := s.View(func(tx *Tx) error {
		id = string(tx.kv.get(bucketMeta, instanceKey))
		return nil
	})
	if err != nil || id != "" {
		return id, err
	}
	if derive == "" {
		b := make([]byte, 4)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		derive = hex.EncodeToString(b)
	}
	if s.readOnly != "" {
		return derive, nil
	}
	err = s.Update(func(tx *Tx) error {
		if v := tx.kv.get(bucketMeta, instanceKey); v != nil {
			id = string(v)
			return nil
		}
		id = derive
		return tx.kv.put(bucketMeta, instanceKey, []byte(id))
	})
	return id, err
}
