package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// MountNSDir is where nodes' own mount namespaces are bind-mounted. It is
// made a private mount of its own: a mount namespace can only be kept on
// a mount that does not propagate into it.
const MountNSDir = "/run/e2en-mntns"

func mountNSPath(name string) string { return filepath.Join(MountNSDir, name) }

// OwnMounts gives the node a mount namespace of its own, a slave of the
// host's (mounts made on the host later show in it, none made in it show
// on the host), in which each key of binds (a dir, made if missing) shows
// the dir its value names (made if missing). Exec and Command run there
// from then on; Remove ends it. A dockerd and a docker-cni started in a
// node with /run/docker/plugins bound to a dir of the test's find each
// other's plugin socket and not the host's, as on a host of their own.
func (n *Node) OwnMounts(ctx context.Context, binds map[string]string) error {
	if n.MountNS != "" {
		return fmt.Errorf("node %s: it has its own mount namespace already", n.Name)
	}
	path := mountNSPath(n.Name)
	if err := privateDir(MountNSDir); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("node %s: make mount namespace: %w", n.Name, err)
	}
	f.Close()
	if out, err := exec.CommandContext(ctx, "unshare", "--mount="+path, "--propagation", "slave", "true").CombinedOutput(); err != nil {
		os.Remove(path)
		return fmt.Errorf("node %s: make mount namespace %s: unshare: %w: %s", n.Name, path, err, out)
	}
	n.MountNS = path
	targets := make([]string, 0, len(binds))
	for t := range binds {
		targets = append(targets, t)
	}
	slices.Sort(targets)
	for _, target := range targets {
		for _, dir := range []string{target, binds[target]} {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if _, err := n.Exec(ctx, "mount", "--bind", binds[target], target); err != nil {
			return err
		}
	}
	return nil
}

// privateDir makes dir (if missing) a private bind mount of itself, unless
// it is a mount point already.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind-mount %s onto itself: %w", dir, err)
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s a private mount: %w", dir, err)
	}
	return nil
}

// isMountPoint reports whether dir is a mount point of this process's
// mount namespace.
func isMountPoint(dir string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) > 4 && fields[4] == dir {
			return true, nil
		}
	}
	return false, s.Err()
}

// removeMountNS unmounts and removes the mount namespace kept at path, and
// MountNSDir (unmounted) when it is left empty. A missing path is fine.
func removeMountNS(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount mount namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove mount namespace %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if ents, err := os.ReadDir(dir); err != nil || len(ents) > 0 {
		return nil
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", dir, err)
	}
	os.Remove(dir)
	return nil
}
