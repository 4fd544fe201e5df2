package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// readmeSection is the ```sh blocks of a README under the "## " heading
// that starts with title, up to the next "## " heading.
func readmeSection(readme, title string) string {
	var part []string
	in := false
	for _, line := range strings.Split(readme, "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			in = strings.HasPrefix(h, title)
			continue
		}
		if in {
			part = append(part, line)
		}
	}
	return readmeScript(strings.Join(part, "\n"))
}

// runReadme runs the commands of dir/README.md with bash against engine e,
// stopping at the first that fails, with env and docker-cni on PATH.
func runReadme(t *testing.T, e engine, dir string, env []string) {
	t.Helper()
	runReadmeScript(t, e, dir, "", env, nil)
}

// runReadmeScript runs the commands of dir/README.md (those of its section
// title, all of them for "") as runReadme does, through command (nil: on
// the host; node.Node.CommandContext: in a node), and returns their output.
func runReadmeScript(t *testing.T, e engine, dir, title string, env []string,
	command func(ctx context.Context, args ...string) *exec.Cmd) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script, what := readmeScript(string(b)), filepath.Base(dir)+"/README.md"
	if title != "" {
		script, what = readmeSection(string(b), title), fmt.Sprintf("%s (%q)", what, title)
	}
	if strings.TrimSpace(script) == "" {
		t.Fatalf("%s has no ```sh commands", what)
	}
	if command == nil {
		command = func(ctx context.Context, args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, args[0], args[1:]...)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// cd first: nsenter into a node's mount namespace starts at its root.
	cmd := command(ctx, "bash", "-euo", "pipefail", "-c", "cd "+strconv.Quote(dir)+"\n"+script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append(env, "DOCKER_HOST="+e.host,
		"PATH="+filepath.Dir(s.d.bin)+":"+os.Getenv("PATH"))...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the commands of %s failed: %v\n%s", what, err, out)
	}
	return string(out)
}
