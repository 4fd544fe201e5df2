package state

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// boltDB is the backend over a bbolt database, the file at path.
type boltDB struct {
	db   *bolt.DB
	path string
}

var _ backend = boltDB{}

func (b boltDB) view(fn func(kv) error) error {
	return b.db.View(func(tx *bolt.Tx) error { return fn(boltKV{tx}) })
}

func (b boltDB) update(fn func(kv) error) error {
	return b.db.Update(func(tx *bolt.Tx) error { return fn(boltKV{tx}) })
}

func (b boltDB) where() string { return b.path }

func (b boltDB) close() error { return b.db.Close() }

// boltKV is a kv over one bbolt transaction. Buckets are made by their
// first write; until then a read finds them empty.
type boltKV struct{ tx *bolt.Tx }

var _ kv = boltKV{}

func (k boltKV) get(bucket, key string) []byte {
	b := k.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Get([]byte(key))
}

func (k boltKV) put(bucket, key string, val []byte) error {
	b, err := k.writable(bucket)
	if err != nil {
		return err
	}
	if err := b.Put([]byte(key), val); err != nil {
		return fmt.Errorf("put %q in bucket %s: %w", key, bucket, err)
	}
	return nil
}

func (k boltKV) delete(bucket, key string) error {
	b := k.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %q from bucket %s: %w", key, bucket, err)
	}
	return nil
}

func (k boltKV) scan(bucket, prefix string, fn func(string, []byte) error) error {
	b := k.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	p := []byte(prefix)
	c := b.Cursor()
	for key, val := c.Seek(p); key != nil && bytes.HasPrefix(key, p); key, val = c.Next() {
		if err := fn(string(key), val); err != nil {
			return err
		}
	}
	return nil
}

// writable returns bucket, making it if it does not exist yet.
func (k boltKV) writable(bucket string) (*bolt.Bucket, error) {
	if b := k.tx.Bucket([]byte(bucket)); b != nil {
		return b, nil
	}
	b, err := k.tx.CreateBucket([]byte(bucket))
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return b, nil
}
