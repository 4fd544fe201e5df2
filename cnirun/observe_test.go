package cnirun

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/docker-cni/docker-cni/observe"
)

type exec struct {
	plugin, command string
	failed          bool
}

type recordingObserver struct {
	mu  sync.Mutex
	got []exec
}

func (o *recordingObserver) PluginExec(plugin, command string, took time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, exec{plugin, command, err != nil})
}

// TestExecObserved: every plugin exec (a single plugin's ADD and DEL, a
// chain's plugins, a VERSION query) is reported by plugin and command, and
// adds its time to the clock the request's context carries.
func TestExecObserved(t *testing.T) {
	dir := t.TempDir()
	script := `#!/bin/sh
cat >/dev/null
case "$CNI_COMMAND" in
VERSION) echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}' ;;
ADD) sleep 0.05; echo '{"cniVersion":"1.0.0","ips":[{"address":"10.231.110.2/24"}]}' ;;
DEL) if [ "$CNI_IFNAME" = fail ]; then echo '{"code":11,"msg":"no"}'; exit 1; fi ;;
esac
`
	for _, name := range []string{"alpha", "beta"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := New([]string{dir}, filepath.Join(dir, "cache"))
	obs := &recordingObserver{}
	l.Observer = obs
	ctx, clock := observe.WithExecClock(context.Background())
	conf := []byte(`{"cniVersion":"1.0.0","name":"n","type":"alpha"}`)
	args := PluginArgs{ContainerID: "c1", IfName: "eth0", NetNS: "/proc/self/ns/net"}
	if _, err := l.PluginAdd(ctx, "alpha", conf, args); err != nil {
		t.Fatal(err)
	}
	if err := l.PluginDel(ctx, "alpha", conf, args); err != nil {
		t.Fatal(err)
	}
	args.IfName = "fail"
	if err := l.PluginDel(ctx, "alpha", conf, args); err == nil {
		t.Fatal("DEL that fails: no error")
	}
	list := []byte(`{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"alpha"},{"type":"beta"}]}`)
	if err := l.Validate(context.Background(), list); err != nil {
		t.Fatal(err)
	}
	want := []exec{{"alpha", "ADD", false}, {"alpha", "DEL", false}, {"alpha", "DEL", true}, {"alpha", "VERSION", false}, {"beta", "VERSION", false}}
	if len(obs.got) != len(want) {
		t.Fatalf("observed %v, want %v", obs.got, want)
	}
	for i := range want {
		if obs.got[i] != want[i] {
			t.Errorf("exec %d = %v, want %v", i, obs.got[i], want[i])
		}
	}
	// The clock has the three runs made with its context, not Validate's.
	if clock.Runs() != 3 || clock.Total() < 50*time.Millisecond {
		t.Errorf("clock: %d runs, %v; want 3 runs, at least the ADD's 50ms", clock.Runs(), clock.Total())
	}
}
