package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// readmeScript is the ```sh blocks of a README, in order: the commands a
// user runs (```text blocks are shown, not run).
func readmeScript(readme string) string {
	var out, block []string
	in := false
	for _, line := range strings.Split(readme, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, block = true, nil
		case in && strings.TrimSpace(line) == "```":
			in, out = false, append(out, block...)
		case in:
			block = append(block, line)
		}
	}
	return strings.Join(out, "\n")
}

// runReadme runs the commands of dir/README.md with bash against engine e,
// stopping at the first that fails, with env and docker-cni on PATH.
func runReadme(t *testing.T, e engine, dir string, env []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script := readmeScript(string(b))
	if strings.TrimSpace(script) == "" {
		t.Fatalf("%s/README.md has no ```sh commands", dir)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, "DOCKER_HOST="+e.host,
		"PATH="+filepath.Dir(s.d.bin)+":"+os.Getenv("PATH"))...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("the commands of %s/README.md failed: %v\n%s", filepath.Base(dir), err, out)
	}
}
