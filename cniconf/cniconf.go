// Package cniconf reads a CNI conf dir the way kubelet's runtimes do: files
// ending in .conf, .conflist or .json, in lexical order, the first file whose
// network name matches wins; a single-plugin .conf is turned into a list.
// It also reads the node facts a conflist refers to (flannel's subnet
// file). It only reads; it never writes the conf dir.
package cniconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containernetworking/cni/libcni"

	"github.com/docker-cni/docker-cni/translate"
)

// Extensions are the conf file endings read, as containerd does.
var Extensions = []string{".conf", ".conflist", ".json"}

// File is one network configuration found in the conf dir.
type File struct {
	Path string
	Name string
	// Bytes is the configuration as a conflist.
	Bytes []byte
}

// Load reads every network configuration in dir. Files that cannot be read
// or parsed are returned in bad, keyed by path.
func Load(dir string) (files []File, bad map[string]error, err error) {
	paths, err := libcni.ConfFiles(dir, Extensions)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("read CNI conf dir %s: %w", dir, err)
	}
	sort.Strings(paths)
	bad = map[string]error{}
	for _, p := range paths {
		list, err := loadFile(p)
		if err != nil {
			bad[p] = err
			continue
		}
		files = append(files, File{Path: p, Name: list.Name, Bytes: list.Bytes})
	}
	return files, bad, nil
}

func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if strings.HasSuffix(path, ".conflist") {
		return libcni.ConfListFromFile(path)
	}
	conf, err := libcni.ConfFromFile(path)
	if err != nil {
		return nil, err
	}
	return libcni.ConfListFromConf(conf)
}

// Find returns the first configuration in dir named name.
func Find(dir, name string) (File, error) {
	files, bad, err := Load(dir)
	if err != nil {
		return File{}, err
	}
	return pick(dir, name, files, bad)
}

// pick returns the first of files named name, or an error naming what the
// dir has and what in it could not be read.
func pick(dir, name string, files []File, bad map[string]error) (File, error) {
	var names []string
	for _, f := range files {
		if f.Name == name {
			return f, nil
		}
		names = append(names, f.Name)
	}
	msg := fmt.Sprintf("CNI network %q not found in %s", name, dir)
	if len(names) > 0 {
		msg += fmt.Sprintf(" (it has: %s)", strings.Join(names, ", "))
	}
	if len(bad) > 0 {
		var bs []string
		for p, e := range bad {
			bs = append(bs, fmt.Sprintf("%s: %v", filepath.Base(p), e))
		}
		sort.Strings(bs)
		msg += "; unreadable or invalid files: " + strings.Join(bs, "; ")
	}
	return File{}, errors.New(msg)
}

// Parse parses a conflist and gives it the node facts it refers to: for
// flannel's, the subnet file flanneld writes (read now, so a new lease is
// seen).
func Parse(b []byte) (*translate.ParsedList, error) {
	pl, err := translate.ParseList(b)
	if err != nil {
		return nil, err
	}
	path, ok := pl.FlannelSubnetFile()
	if !ok {
		return pl, nil
	}
	env, err := ReadSubnetEnv(path)
	if err != nil {
		return nil, fmt.Errorf("CNI network %q delegates through flannel: %w", pl.Name, err)
	}
	return pl, pl.WithSubnetEnv(env)
}

// ReadSubnetEnv reads a flannel subnet file.
func ReadSubnetEnv(path string) (translate.SubnetEnv, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return translate.SubnetEnv{}, fmt.Errorf("read its subnet file (is flanneld running on this node?): %w", err)
	}
	env, err := translate.ParseSubnetEnv(b)
	if err != nil {
		return translate.SubnetEnv{}, fmt.Errorf("subnet file %s: %w", path, err)
	}
	return env, nil
}
