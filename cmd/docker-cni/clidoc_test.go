package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/internal/clidoc"
)

// TestManAndCompletions: the man pages and completions make install ships
// are generated from the commands: one page per command, with its flags
// and examples, reproducible under SOURCE_DATE_EPOCH; the bash completion
// completes through the binary's own __complete.
func TestManAndCompletions(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01
	gen := func() string {
		dir := t.TempDir()
		if err := clidoc.Write(newRoot(os.Stdout, os.Stderr), dir, "docker-cni test"); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir := gen()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, page := range []string{"docker-cni", "docker-cni-serve", "docker-cni-networks", "docker-cni-endpoints",
		"docker-cni-inspect", "docker-cni-gc", "docker-cni-dump", "docker-cni-network-create", "docker-cni-version"} {
		read(filepath.Join("man", "man1", page+".1"))
	}
	serve := read("man/man1/docker-cni-serve.1")
	wantAll(t, "docker-cni-serve.1", serve, `.TH "docker-cni" "1" "Jan 2026" "docker-cni test"`, `\fB--cni-bin-dir\fP="/opt/cni/bin:/usr/lib/cni"`,
		"CNI_CONF_DIR", ".SH EXAMPLE", `docker-cni serve --log-level debug`)
	if strings.Contains(serve, "Auto generated") {
		t.Error("man page carries cobra's auto-generated tag")
	}
	if again := gen(); read("man/man1/docker-cni-serve.1") != mustRead(t, filepath.Join(again, "man/man1/docker-cni-serve.1")) {
		t.Error("two generations differ: the .deb would not be reproducible")
	}
	wantAll(t, "bash completion", read("completions/docker-cni.bash"), "__start_docker-cni", "__complete ${args[*]}")
	wantAll(t, "zsh completion", read("completions/_docker-cni"), "#compdef docker-cni")
	wantAll(t, "fish completion", read("completions/docker-cni.fish"), "complete -c docker-cni")
}

// TestCompleteCommand: what the completion scripts ask the binary
// (`docker-cni __complete ...`): commands, flags, --format's values, a
// conflist name for --bind.
func TestCompleteCommand(t *testing.T) {
	conf := t.TempDir()
	if err := os.WriteFile(filepath.Join(conf, "10-pods.conflist"), []byte(`{"name":"k8s-pod-network","cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "net"}, []string{"network\t", "networks\t"}},
		{[]string{"__complete", "serve", "--cni-b"}, []string{"--cni-bin-dir\t"}},
		{[]string{"__complete", "networks", "--format", ""}, []string{"table", "json"}},
		{[]string{"__complete", "network", "create", "x", "--cni-conf-dir", conf, "--bind", ""}, []string{"k8s-pod-network\t" + filepath.Join(conf, "10-pods.conflist")}},
	} {
		out, _, err := cli(t, tc.args...)
		if err != nil {
			t.Errorf("%v: %v", tc.args, err)
		}
		wantAll(t, strings.Join(tc.args, " "), out, tc.want...)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
