package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/docker-cni/docker-cni/observe"
)

// newLogger returns the daemon's logger: text (logfmt-like key=value) or
// JSON lines at level. Records logged with a request's context carry the
// request's method, network and endpoint (observe.LogHandler).
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return slog.New(observe.LogHandler(h)), nil
}
