package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCompose: examples/compose runs with docker-compose: the service is
// reached on its published port, and the client reaches it by service name.
func TestCompose(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Fatal("docker-compose not installed (test/engines/install-deps.sh installs Debian's)")
	}
	forEngine(t, func(t *testing.T, e engine) {
		port := 18180 + e.net
		project := fmt.Sprintf("e2ecompose%s", e.name)
		compose := func(args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "docker-compose", append([]string{"-p", project, "-f",
				filepath.Join(s.repo, "examples", "compose", "docker-compose.yml")}, args...)...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host, "IMAGE="+image, "CNI_DRIVER="+s.driver,
				fmt.Sprintf("WEB_PORT=%d", port), "SUBNET="+e.subnet(25))
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		t.Cleanup(func() { compose("down", "-t", "1") })
		if out, err := compose("up", "-d"); err != nil {
			if e.name == "current" && strings.Contains(out, "API version") {
				t.Fatalf("docker-compose 1.29 cannot talk to this engine: %s", out)
			}
			t.Fatalf("docker-compose up: %v\n%s", err, out)
		}
		if body, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err != nil || !strings.Contains(body, "hello from compose") {
			t.Errorf("published port %d: %q, %v", port, body, err)
		}
		out, err := compose("exec", "-T", "client", "sh", "-c", `printf 'GET /index.html HTTP/1.0\r\n\r\n' | nc -w 3 web 80`)
		if err != nil || !strings.Contains(out, "hello from compose") {
			t.Errorf("client -> web by service name: %v\n%s", err, out)
		}
	})
}
