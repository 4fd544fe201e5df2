package cniconf

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
)

// Cached is a conf dir read again only when its files changed (their
// names, sizes or modification times): a Join of a bound network looks its
// conflist up without reading and parsing the whole dir each time.
type Cached struct {
	Dir   string
	mu    sync.Mutex
	stamp string
	files []File
	bad   map[string]error
}

// Find returns the first configuration in the dir named name, as Find
// does.
func (c *Cached) Find(name string) (File, error) {
	stamp, err := c.stampNow()
	if err != nil {
		return File{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if stamp != c.stamp || c.files == nil {
		files, bad, err := Load(c.Dir)
		if err != nil {
			return File{}, err
		}
		c.stamp, c.files, c.bad = stamp, files, bad
	}
	return pick(c.Dir, name, c.files, c.bad)
}

// stampNow sums up the conf files as they are now.
func (c *Cached) stampNow() (string, error) {
	paths, err := libcni.ConfFiles(c.Dir, Extensions)
	if err != nil && !os.IsNotExist(err) {
		return "", fmt.Errorf("read CNI conf dir %s: %w", c.Dir, err)
	}
	var b strings.Builder
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%s|%d|%d\n", p, st.Size(), st.ModTime().UnixNano())
		}
	}
	return b.String(), nil
}
