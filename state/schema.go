package state

import "fmt"

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
