package translate

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultHostLocalDataDir is host-local's store when its ipam section sets
// no dataDir.
const DefaultHostLocalDataDir = "/var/lib/cni/networks"

// HostLocalStoreDir is the directory host-local keeps a network's
// reservations in, for the IPAM network configuration it is run with:
// dataDir/<network name>, one file per address.
func HostLocalStoreDir(netconf []byte) (string, error) {
	var c struct {
		Name string `json:"name"`
		IPAM struct {
			DataDir string `json:"dataDir"`
		} `json:"ipam"`
	}
	if err := json.Unmarshal(netconf, &c); err != nil {
		return "", fmt.Errorf("decode IPAM configuration: %w", err)
	}
	dir := c.IPAM.DataDir
	if dir == "" {
		dir = DefaultHostLocalDataDir
	}
	return filepath.Join(dir, c.Name), nil
}

// HostLocalOwner reads a host-local reservation file: the container ID it
// is held for, then (newer host-local) the interface name.
func HostLocalOwner(content []byte) (owner, ifName string) {
	lines := strings.Split(strings.TrimSpace(string(content)), "\n")
	owner = strings.TrimSpace(lines[0])
	if len(lines) > 1 {
		ifName = strings.TrimSpace(lines[1])
	}
	return owner, ifName
}
