package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrNotFound is returned, wrapped, for a record that does not exist.
var ErrNotFound = errors.New("not found")

// table is one kind of record: the bucket it lives in, keyed by its ID,
// and the index entries a record has.
type table[T any] struct {
	// name names a record of the table in errors ("pool").
	name   string
	bucket string
	// index returns the entries that point at rec, stored under key.
	index func(key string, rec *T) ([]entry, error)
	// indexes are the buckets index writes to.
	indexes []string
}

// entry is one index entry: a key in an index bucket whose value is the
// key of the record it points at.
type entry struct {
	bucket, key, target string
}

func (t table[T]) get(k kv, key string) (*T, error) {
	val := k.get(t.bucket, key)
	if val == nil {
		return nil, fmt.Errorf("%s %q: %w", t.name, key, ErrNotFound)
	}
	return t.decode(key, val)
}

func (t table[T]) decode(key string, val []byte) (*T, error) {
	rec := new(T)
	if err := json.Unmarshal(val, rec); err != nil {
		return nil, fmt.Errorf("decode %s %q in bucket %s: %w", t.name, key, t.bucket, err)
	}
	return rec, nil
}

// list returns every record, in key order.
func (t table[T]) list(k kv) ([]*T, error) {
	var out []*T
	err := k.scan(t.bucket, "", func(key string, val []byte) error {
		rec, err := t.decode(key, val)
		out = append(out, rec)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lookup returns the records that index bucket lists under value, in key
// order.
func (t table[T]) lookup(k kv, bucket, value string) ([]*T, error) {
	var keys []string
	err := k.scan(bucket, value+sep, func(_ string, target []byte) error {
		keys = append(keys, string(target))
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	out := make([]*T, 0, len(keys))
	for _, key := range keys {
		rec, err := t.get(k, key)
		if err != nil {
			return nil, fmt.Errorf("follow index %s under %q: %w", bucket, value, err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// put stores rec under key and moves its index entries from the stored
// record's to rec's.
func (t table[T]) put(k kv, key string, rec *T) error {
	if err := checkKey(key); err != nil {
		return fmt.Errorf("put %s: %w", t.name, err)
	}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", t.name, key, err)
	}
	now, err := t.index(key, rec)
	if err != nil {
		return fmt.Errorf("index %s %q: %w", t.name, key, err)
	}
	old, err := t.stored(k, key)
	if err != nil {
		return err
	}
	if err := removeEntries(k, old, now); err != nil {
		return err
	}
	if err := k.put(t.bucket, key, val); err != nil {
		return err
	}
	return addEntries(k, now, old)
}

// delete removes the record under key, if any, and its index entries.
func (t table[T]) delete(k kv, key string) error {
	old, err := t.stored(k, key)
	if err != nil {
		return err
	}
	if err := removeEntries(k, old, nil); err != nil {
		return err
	}
	return k.delete(t.bucket, key)
}

// stored returns the index entries of the record stored under key: none
// when there is no record. Should the record not decode, they are found by
// their target, so that a bad record can still be replaced or deleted.
func (t table[T]) stored(k kv, key string) ([]entry, error) {
	val := k.get(t.bucket, key)
	if val == nil {
		return nil, nil
	}
	rec, err := t.decode(key, val)
	if err != nil {
		return t.pointingAt(k, key)
	}
	es, err := t.index(key, rec)
	if err != nil {
		return t.pointingAt(k, key)
	}
	return es, nil
}

// pointingAt returns the index entries whose target is key, reading every
// index of the table.
func (t table[T]) pointingAt(k kv, key string) ([]entry, error) {
	var es []entry
	for _, bucket := range t.indexes {
		err := k.scan(bucket, "", func(ikey string, target []byte) error {
			if string(target) == key {
				es = append(es, entry{bucket, ikey, key})
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return es, nil
}

// removeEntries deletes the entries of old that keep does not hold.
func removeEntries(k kv, old, keep []entry) error {
	for _, e := range old {
		if !hasEntry(keep, e) {
			if err := k.delete(e.bucket, e.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// addEntries writes the entries of now that had does not hold.
func addEntries(k kv, now, had []entry) error {
	for _, e := range now {
		if !hasEntry(had, e) {
			if err := k.put(e.bucket, e.key, []byte(e.target)); err != nil {
				return err
			}
		}
	}
	return nil
}

func hasEntry(es []entry, e entry) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// sep joins the parts of an index key. checkPart keeps it out of the
// parts, so a prefix scan of value+sep finds exactly that value's entries.
const sep = "\x00"

// checkKey says whether key can be a record's key.
func checkKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	return checkPart(key)
}

// checkPart says whether s can be part of a key.
func checkPart(s string) error {
	if strings.Contains(s, sep) {
		return fmt.Errorf("%q holds a NUL byte", s)
	}
	return nil
}

// indexKey joins parts into an index key, refusing parts that hold sep.
func indexKey(parts ...string) (string, error) {
	for _, p := range parts {
		if err := checkPart(p); err != nil {
			return "", err
		}
	}
	return strings.Join(parts, sep), nil
}
