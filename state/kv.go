package state

// kv is what one transaction sees of a store: per bucket, an ordered map of
// keys to values. Tx keeps records and their indexes on top of it, so that
// logic exists once for bbolt and for memory.
type kv interface {
	// get returns the value of key, or nil when there is none. The value
	// is valid until the transaction ends and must not be changed.
	get(bucket, key string) []byte
	// put sets key to val and keeps val: the caller must not change it.
	put(bucket, key string, val []byte) error
	// delete removes key; a missing key is not an error.
	delete(bucket, key string) error
	// scan calls fn for every key that starts with prefix, in key order,
	// and stops at fn's first error. fn must not change the bucket nor
	// keep val.
	scan(bucket, prefix string, fn func(key string, val []byte) error) error
}

// backend runs transactions over a kv. update commits only when fn returns
// nil; neither may be called from inside fn.
type backend interface {
	view(fn func(kv) error) error
	update(fn func(kv) error) error
	close() error
	// where names the store in errors (the database file).
	where() string
}

// maxKeySize is the longest key bbolt takes; the memory store refuses the
// same keys so that both behave alike.
const maxKeySize = 32768
