package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestHelp: `help CMD` and `CMD --help` print the command's usage with its
// examples and its GNU-style flags, on stdout, and succeed; so does
// docker-cni alone.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "serve"}, {"serve", "--help"}, {"serve", "-h"}, {"serve", "-help"}} {
		out, _, err := cli(t, args...)
		if err != nil {
			t.Errorf("%v: %v", args, err)
		}
		wantAll(t, strings.Join(args, " "), out, "docker-cni serve [flags]", "Examples:", "--cni-bin-dir string", `(default "/run/docker/plugins/cni.sock")`)
	}
	out, _, err := cli(t)
	if err != nil {
		t.Errorf("docker-cni: %v", err)
	}
	wantAll(t, "docker-cni", out, "Available Commands:", "serve", "networks", "endpoints", "inspect", "gc", "dump", "network", "version", "completion")
	for _, cmd := range []string{"networks", "endpoints", "inspect", "gc", "dump", "version", "network create"} {
		out, _, err := cli(t, append(strings.Fields(cmd), "--help")...)
		if err != nil || !strings.Contains(out, "Examples:\n  docker-cni "+strings.Fields(cmd)[0]) {
			t.Errorf("%s --help has no example: %v\n%s", cmd, err, out)
		}
	}
}

// TestErrors: a mistake is one line naming it and where help is, with a
// non-zero exit (main prints it on stderr as "docker-cni: ...").
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"netwrk"}, `unknown command "netwrk" for "docker-cni" (did you mean network or networks?); 'docker-cni --help' lists the commands`},
		{[]string{"lss"}, `unknown command "lss" for "docker-cni" (did you mean ls?)`},
		{[]string{"network", "remove"}, `unknown command "remove" for "docker-cni network"; 'docker-cni network --help' lists the commands`},
		{[]string{"serve", "--bogus"}, `serve: unknown flag: --bogus (see 'docker-cni serve --help')`},
		{[]string{"serve", "extra"}, `serve: unexpected arguments [extra] (see 'docker-cni serve --help')`},
		{[]string{"network", "create", "x", "--bind"}, `network create: flag needs an argument: --bind (see 'docker-cni network create --help')`},
		{[]string{"serve", "--cni-timeout", "soon"}, `serve: invalid argument "soon" for "--cni-timeout" flag`},
		{[]string{"dump", "nothing"}, `usage: docker-cni dump networks|endpoints|pools|reservations`},
		{[]string{"inspect"}, `usage: docker-cni inspect [--format table|json] CONTAINER`},
	} {
		_, stderr, err := cli(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.args, err, tc.want)
			continue
		}
		if strings.Contains(oneLine(err), "\n") || stderr != "" {
			t.Errorf("%v: not one line: %q, stderr %q", tc.args, oneLine(err), stderr)
		}
	}
	joined := fmt.Errorf("read: %w", errors.Join(errors.New("a failed"), errors.New("b failed\n")))
	if got := oneLine(joined); got != "read: a failed; b failed" {
		t.Errorf("oneLine: %q", got)
	}
}

// TestFormatFlag: every command that lists things takes --format table or
// json, and refuses others by name.
func TestFormatFlag(t *testing.T) {
	sock := daemonFake(t, func(context.Context) error { return nil })
	for _, cmd := range [][]string{{"networks"}, {"endpoints"}, {"ls"}, {"inspect", "web"}, {"gc"}, {"version"}} {
		_, _, err := cli(t, append(cmd, "--admin-socket", sock, "--format", "yaml")...)
		if err == nil || !strings.Contains(err.Error(), `--format "yaml": want table or json`) {
			t.Errorf("%v --format yaml: %v", cmd, err)
		}
		if _, _, err := cli(t, append(cmd, "--admin-socket", sock, "--format", "json")...); err != nil {
			t.Errorf("%v --format json: %v", cmd, err)
		}
	}
}

// TestOldSpellings: the single-dash long flags Go's flag package took keep
// working, each with a line on stderr saying the new spelling; values and
// what follows "--" are left alone.
func TestOldSpellings(t *testing.T) {
	var warn strings.Builder
	args := modernFlags(newRoot(io.Discard, io.Discard), []string{"serve", "-cni-bin-dir", "/c", "-log-level=warn", "--socket", "-odd-value", "-h"}, &warn)
	want := []string{"serve", "--cni-bin-dir", "/c", "--log-level=warn", "--socket", "-odd-value", "-h"}
	if !slices.Equal(args, want) {
		t.Errorf("rewritten: %q, want %q", args, want)
	}
	if warn.String() != "docker-cni: -cni-bin-dir is an old spelling: use --cni-bin-dir\ndocker-cni: -log-level=warn is an old spelling: use --log-level\n" {
		t.Errorf("warnings: %q", warn.String())
	}
	args = modernFlags(newRoot(io.Discard, io.Discard), []string{"network", "create", "x", "-bind", "cbr0", "--", "-label"}, io.Discard)
	if want := []string{"network", "create", "x", "--bind", "cbr0", "--", "-label"}; !slices.Equal(args, want) {
		t.Errorf("rewritten: %q, want %q", args, want)
	}

	f, err := parseServe(modernFlags(newRoot(io.Discard, io.Discard), []string{"serve", "-cni-bin-dir", "/c", "-reconcile-interval=0"}, io.Discard)[1:], io.Discard)
	if err != nil || f.binDir != "/c" || f.reconcileEvery != 0 {
		t.Errorf("serve with old spellings: %+v, %v", f, err)
	}
	sock := daemonFake(t, nil)
	out, stderr, err := cli(t, "ls", "-json", "-admin-socket", sock)
	if err != nil || !strings.HasPrefix(out, "[") || !strings.Contains(stderr, "-json is an old spelling: use --json") {
		t.Errorf("ls -json: %v\n%s\n%s", err, out, stderr)
	}
}

// TestSameFlagsAsBefore: every flag each command took before cobra is
// still taken (scripts and the suite pass --state-dir to gc).
func TestSameFlagsAsBefore(t *testing.T) {
	before := map[string][]string{
		"serve": {"socket", "cni-conf-dir", "cni-bin-dir", "state-dir", "cni-cache-dir", "run-dir", "log-level", "log-format", "metrics-address",
			"default-address-pools", "docker-host", "cni-timeout", "reconcile-interval", "cni-check-interval", "k8s-namespace", "restart-containers", "docker-user-rules"},
		"networks":       {"state-dir", "admin-socket", "format"},
		"endpoints":      {"state-dir", "admin-socket", "format", "json"},
		"ls":             {"state-dir", "admin-socket", "format", "json"},
		"inspect":        {"state-dir", "admin-socket", "format"},
		"gc":             {"state-dir", "admin-socket", "format", "timeout"},
		"version":        {"admin-socket", "format"},
		"dump":           {"state-dir", "admin-socket"},
		"network create": {"bind", "cni-conf-dir", "docker-host", "driver", "subnet", "gateway", "label", "opt"},
	}
	root := newRoot(io.Discard, io.Discard)
	for path, flags := range before {
		cmd, _, err := root.Find(strings.Fields(path))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, f := range flags {
			if cmd.Flags().Lookup(f) == nil {
				t.Errorf("%s no longer takes --%s", path, f)
			}
		}
	}
}
