package observe

import (
	"context"
	"log/slog"
	"slices"
)

type attrsKey struct{}

// WithLogAttrs returns a context carrying attrs (after those ctx carries
// already): a handler wrapped with LogHandler adds them to every record
// logged with the context, e.g. the network and endpoint of the request
// being served.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	if len(attrs) == 0 {
		return ctx
	}
	have, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	return context.WithValue(ctx, attrsKey{}, append(slices.Clip(have), attrs...))
}

// LogAttrs returns the attributes ctx carries.
func LogAttrs(ctx context.Context) []slog.Attr {
	a, _ := ctx.Value(attrsKey{}).([]slog.Attr)
	return a
}

// LogHandler wraps h so that each record gets the attributes its context
// carries (WithLogAttrs), except those whose key the record, or the
// logger's With, already has.
func LogHandler(h slog.Handler) slog.Handler { return &ctxHandler{inner: h} }

type ctxHandler struct {
	inner slog.Handler
	// bound are the top-level keys the logger's With added.
	bound []string
}

func (h *ctxHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	attrs := LogAttrs(ctx)
	if len(attrs) == 0 {
		return h.inner.Handle(ctx, r)
	}
	has := map[string]bool{}
	for _, k := range h.bound {
		has[k] = true
	}
	r.Attrs(func(a slog.Attr) bool {
		has[a.Key] = true
		return true
	})
	r = r.Clone()
	for _, a := range attrs {
		if !has[a.Key] {
			has[a.Key] = true
			r.AddAttrs(a)
		}
	}
	return h.inner.Handle(ctx, r)
}

func (h *ctxHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	bound := slices.Clip(h.bound)
	for _, a := range attrs {
		bound = append(bound, a.Key)
	}
	return &ctxHandler{inner: h.inner.WithAttrs(attrs), bound: bound}
}

func (h *ctxHandler) WithGroup(name string) slog.Handler {
	return &ctxHandler{inner: h.inner.WithGroup(name), bound: h.bound}
}
