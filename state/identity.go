package state

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
)

// DirInstance derives an instance ID from where the state dir dir lives on
// the host: the filesystem (device) holding it and its path inside that
// filesystem, as /proc/self/mountinfo tells them. Two daemons never share
// a state dir (the database is locked), so their IDs differ, also for
// managed plugins, whose state dirs are bind mounts of different host dirs
// on one path; a daemon whose database was lost, and even a wiped state
// dir, gets the same ID back. "" when the mounts cannot be read (a random
// ID is made then).
func DirInstance(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounts, err := mountinfo.GetMounts(nil)
	if err != nil {
		return ""
	}
	return dirInstance(abs, mounts)
}

// dirInstance is DirInstance over a list of mounts: the mount whose mount
// point is the longest prefix of dir names the device and the root inside
// it.
func dirInstance(dir string, mounts []*mountinfo.Info) string {
	var best *mountinfo.Info
	for _, m := range mounts {
		if within(dir, m.Mountpoint) && (best == nil || len(m.Mountpoint) >= len(best.Mountpoint)) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	rel := strings.TrimPrefix(dir, best.Mountpoint)
	where := fmt.Sprintf("%d:%d %s", best.Major, best.Minor, filepath.Join(best.Root, rel))
	sum := sha256.Sum256([]byte(where))
	return hex.EncodeToString(sum[:4])
}

// within says whether path is dir or below it.
func within(path, dir string) bool {
	return dir == "/" || path == dir || strings.HasPrefix(path, dir+"/")
}
