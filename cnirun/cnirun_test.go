package cnirun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
)

// fakePlugin writes a plugin binary into dir that answers VERSION with
// the given versions, as the reference plugins do.
func fakePlugin(t *testing.T, dir, name string, versions ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	script := fmt.Sprintf("#!/bin/sh\ncat >/dev/null\necho '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"%s\"]}'\n",
		strings.Join(versions, `","`))
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestValidate: every plugin of the list and the IPAM plugin it delegates
// to must exist and support the list's version; a plugin that does not is
// named with its path and the versions it supports.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	all := []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0"}
	fakePlugin(t, dir, "bridge", all...)
	fakePlugin(t, dir, "portmap", all...)
	firewall := fakePlugin(t, dir, "firewall", "0.4.0", "1.0.0")
	static := fakePlugin(t, dir, "static", "0.3.0", "0.3.1", "0.4.0")
	l := New([]string{filepath.Join(dir, "none"), dir}, filepath.Join(dir, "cache"))

	list := func(version string, plugins ...string) []byte {
		return fmt.Appendf(nil, `{"cniVersion": %q, "name": "n", "plugins": [
		  {"type": "bridge", "ipam": {"type": "static"}}%s]}`, version, strings.Join(plugins, ""))
	}
	cases := []struct {
		name string
		list []byte
		// want is the error's text, "" for none.
		want    string
		version *VersionError
	}{
		{name: "all support it", list: list("0.4.0", `, {"type": "portmap"}`, `, {"type": "firewall"}`)},
		{name: "firewall too new for the list", list: list("0.3.1", `, {"type": "portmap"}`, `, {"type": "firewall"}`),
			want:    fmt.Sprintf("plugin firewall (%s) does not support CNI version 0.3.1 (it supports 0.4.0, 1.0.0)", firewall),
			version: &VersionError{Plugin: "firewall", Path: firewall, Version: "0.3.1", Supported: []string{"0.4.0", "1.0.0"}}},
		{name: "delegated IPAM plugin too old", list: list("1.0.0", `, {"type": "firewall"}`),
			want:    fmt.Sprintf("plugin static (%s) does not support CNI version 1.0.0 (it supports 0.3.0, 0.3.1, 0.4.0)", static),
			version: &VersionError{Plugin: "static", Path: static, Version: "1.0.0", Supported: []string{"0.3.0", "0.3.1", "0.4.0"}}},
		{name: "missing plugin", list: list("0.4.0", `, {"type": "tuning"}`),
			want: fmt.Sprintf(`plugin "tuning" not found in %s:%s`, filepath.Join(dir, "none"), dir)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Validate(context.Background(), tc.list)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate: %v\nwant %s", err, tc.want)
			}
			var ve *VersionError
			if got := errors.As(err, &ve); got != (tc.version != nil) {
				t.Fatalf("Validate: %v is a VersionError: %v", err, got)
			}
			if tc.version != nil && fmt.Sprint(*ve) != fmt.Sprint(*tc.version) {
				t.Errorf("VersionError = %+v, want %+v", *ve, *tc.version)
			}
		})
	}
}

func TestPluginTypes(t *testing.T) {
	for _, tc := range []struct{ list, want string }{
		{`{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge", "ipam": {"type": "host-local"}}, {"type": "portmap"}]}`,
			"[bridge portmap host-local]"},
		{`{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge", "ipam": {"type": "bridge"}}, {"type": "bridge"}]}`,
			"[bridge]"},
		{`{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "macvlan", "ipam": {}}]}`,
			"[macvlan]"},
	} {
		nl, err := libcni.ConfListFromBytes([]byte(tc.list))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(pluginTypes(nl)); got != tc.want {
			t.Errorf("pluginTypes(%s) = %s, want %s", tc.list, got, tc.want)
		}
	}
}

// TestCheckVersion: a list without cniVersion is 0.1.0, as libcni reads it.
func TestCheckVersion(t *testing.T) {
	if err := checkVersion("bridge", "/b/bridge", "", []string{"0.1.0", "0.2.0"}); err != nil {
		t.Errorf("empty version against 0.1.0: %v", err)
	}
	err := checkVersion("firewall", "/b/firewall", "", []string{"0.4.0"})
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Version != "0.1.0" {
		t.Errorf("empty version against 0.4.0 only: %v", err)
	}
}
