package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// systemPlugins is where Debian's reference CNI plugins are.
const systemPlugins = "/usr/lib/cni"

// makePluginDir makes the CNI bin dir the suite's daemon and CRI runtimes
// use: every plugin of systemPlugins, linked, and the test stand-ins built
// from test/plugins (flannel's: its real plugin cannot be had from the Go
// module proxy here; the stand-in's header says what it does and how it was
// checked against the real one).
func makePluginDir(ctx context.Context, repo, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(systemPlugins)
	if err != nil {
		return fmt.Errorf("the reference CNI plugins: %w", err)
	}
	for _, e := range entries {
		link := filepath.Join(dir, e.Name())
		os.Remove(link)
		if err := os.Symlink(filepath.Join(systemPlugins, e.Name()), link); err != nil {
			return err
		}
	}
	for _, p := range []string{"flannel", "fault"} {
		if err := standIn(ctx, repo, dir, p); err != nil {
			return err
		}
	}
	return linkCalicoPlugins(dir)
}

// standIn puts the test stand-in of plugin p in dir, or, when
// E2E_<P>_PLUGIN names a binary (the real plugin, built by hand beside the
// project), links that instead.
func standIn(ctx context.Context, repo, dir, p string) error {
	if real := os.Getenv("E2E_" + strings.ToUpper(p) + "_PLUGIN"); real != "" {
		os.Remove(filepath.Join(dir, p))
		return os.Symlink(real, filepath.Join(dir, p))
	}
	out, err := run(ctx, "go", "build", "-o", filepath.Join(dir, p), filepath.Join(repo, "test", "plugins", p))
	if err != nil {
		return fmt.Errorf("build test plugin %s: %v\n%s", p, err, out)
	}
	return nil
}
