package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/observe"
)

// TestLogFormat: --log-format text and json, each record with the
// request's attributes from its context; a bad format or level is named.
func TestLogFormat(t *testing.T) {
	ctx := observe.WithLogAttrs(context.Background(), slog.String("network", "a1b2c3d4e5f6"), slog.String("endpoint", "e1e1e1e1e1e1"))

	var buf bytes.Buffer
	log, err := newLogger("info", "json", &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.DebugContext(ctx, "hidden")
	log.InfoContext(ctx, "joined", "container", "web")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("json log %q: %v", buf.String(), err)
	}
	for k, v := range map[string]any{"level": "INFO", "msg": "joined", "network": "a1b2c3d4e5f6", "endpoint": "e1e1e1e1e1e1", "container": "web"} {
		if rec[k] != v {
			t.Errorf("json log: %s = %v, want %v (%s)", k, rec[k], v, buf.String())
		}
	}

	buf.Reset()
	if log, err = newLogger("debug", "text", &buf); err != nil {
		t.Fatal(err)
	}
	log.DebugContext(ctx, "detached", "ifname", "eth0")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=detached ifname=eth0 network=a1b2c3d4e5f6 endpoint=e1e1e1e1e1e1\n") {
		t.Errorf("text log: %q", got)
	}

	if _, err := newLogger("info", "xml", io.Discard); err == nil || !strings.Contains(err.Error(), `--log-format "xml": want text or json`) {
		t.Errorf("bad format: %v", err)
	}
	if _, err := newLogger("loud", "text", io.Discard); err == nil || !strings.Contains(err.Error(), `--log-level "loud"`) {
		t.Errorf("bad level: %v", err)
	}
	f, err := parseServe([]string{"--log-format", "json"}, io.Discard)
	if err != nil || f.logFormat != "json" {
		t.Errorf("parseServe --log-format json: %+v, %v", f.logFormat, err)
	}
	if f, _ := parseServe(nil, io.Discard); f.logFormat != "text" {
		t.Errorf("default --log-format %q, want text", f.logFormat)
	}
}
