// Package testutil holds the fakes the drivers' unit tests share: a CNI
// runner that records what it is asked to run and keeps a host-local-like
// address store, and an in-memory model of network namespaces and their
// links. Nothing here runs a plugin, enters a netns or needs root; it must
// not be imported by production code.
package testutil

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// Logger returns a logger writing to the test's log, so a failing test
// shows what the handlers said.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// Decode unmarshals JSON into a generic map, failing the test on error.
func Decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// IPAMSection returns the ipam section of a conflist (that of the first
// plugin having one) or of a single network configuration.
func IPAMSection(t testing.TB, conf []byte) map[string]any {
	t.Helper()
	m := Decode(t, conf)
	if ipam, ok := m["ipam"].(map[string]any); ok {
		return ipam
	}
	plugins, _ := m["plugins"].([]any)
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		if ipam, ok := pm["ipam"].(map[string]any); ok {
			return ipam
		}
	}
	t.Fatalf("no ipam section in %s", conf)
	return nil
}

// Plugin returns the first plugin of the given type in a conflist.
func Plugin(t testing.TB, list []byte, typ string) map[string]any {
	t.Helper()
	plugins, _ := Decode(t, list)["plugins"].([]any)
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		if pm["type"] == typ {
			return pm
		}
	}
	t.Fatalf("no %s plugin in %s", typ, list)
	return nil
}

// PluginTypes lists the plugin types of a conflist, in order.
func PluginTypes(t testing.TB, list []byte) []string {
	t.Helper()
	plugins, _ := Decode(t, list)["plugins"].([]any)
	var out []string
	for _, p := range plugins {
		pm, _ := p.(map[string]any)
		s, _ := pm["type"].(string)
		out = append(out, s)
	}
	return out
}
