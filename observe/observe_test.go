package observe_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/observe"
)

// TestExecClock: execs made with a context that carries a clock add up,
// also from derived contexts and concurrently; without a clock nothing
// happens.
func TestExecClock(t *testing.T) {
	observe.AddExec(context.Background(), time.Second)
	ctx, clock := observe.WithExecClock(context.Background())
	derived, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { observe.AddExec(derived, 3*time.Millisecond) })
	}
	wg.Wait()
	if clock.Runs() != 10 || clock.Total() != 30*time.Millisecond {
		t.Errorf("clock: %d runs, %v; want 10, 30ms", clock.Runs(), clock.Total())
	}
}

// TestLogHandler: a record logged with a context gets the context's
// attributes, unless it (or the logger's With) has the key already.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(observe.LogHandler(slog.NewTextHandler(&buf, nil)))
	ctx := observe.WithLogAttrs(context.Background(), slog.String("network", "n1"), slog.String("endpoint", "e1"))
	ctx = observe.WithLogAttrs(ctx, slog.String("container", "web"))
	log.InfoContext(ctx, "a")
	log.InfoContext(ctx, "b", "network", "n2")
	log.With("endpoint", "e3").InfoContext(ctx, "c")
	log.Info("d")
	want := []string{
		"msg=a network=n1 endpoint=e1 container=web",
		"msg=b network=n2 endpoint=e1 container=web",
		"msg=c endpoint=e3 network=n1 container=web",
		"msg=d",
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, w := range want {
		if i >= len(lines) || !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d: want it to end with %q\n%s", i, w, buf.String())
		}
	}
}

// TestLeak: the kinds that mean something was left behind.
func TestLeak(t *testing.T) {
	var leaks []string
	for _, k := range observe.Kinds {
		if observe.Leak(k) {
			leaks = append(leaks, k)
		}
	}
	if got := strings.Join(leaks, ","); got != "reservation_undone,link_swept,netns_swept,store_entry_swept" {
		t.Errorf("leak kinds %s", got)
	}
}
