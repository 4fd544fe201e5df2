package main

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// An activated child is this test binary run again with a listening socket
// at fd 3, as systemd-socket-activate starts a daemon; it sets LISTEN_PID
// itself (a parent cannot know the pid before the exec).
const childSocketEnv = "DOCKER_CNI_TEST_ACTIVATED_SOCKET"

// TestActivatedChild is the child's side of TestPluginListener; it does
// nothing unless started by it.
func TestActivatedChild(t *testing.T) {
	path := os.Getenv(childSocketEnv)
	if path == "" {
		t.Skip("started by TestPluginListener only")
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	l, inherited, err := pluginListener(path)
	if err != nil {
		t.Fatal(err)
	}
	if !inherited {
		t.Fatal("pluginListener made a socket of its own, want the passed one")
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if v, ok := os.LookupEnv(k); ok {
			t.Errorf("%s=%s still set: CNI plugins would inherit it", k, v)
		}
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "served\n")
	c.Close()
}

// startActivated starts the child with a socket listening at listenAt and
// --socket path, and returns it with its combined output.
func startActivated(t *testing.T, listenAt, path string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	l, err := net.Listen("unix", listenAt)
	if err != nil {
		t.Fatal(err)
	}
	// The parent's copy closes; the file stays for the child.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	defer l.Close()
	f, err := l.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestActivatedChild$", "-test.v")
	cmd.Env = append(os.Environ(), childSocketEnv+"="+path, "LISTEN_FDS=1", "LISTEN_FDNAMES=docker-cni.socket")
	cmd.ExtraFiles = []*os.File{f}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd, out
}

// TestPluginListener: a daemon started by socket activation serves the
// socket it was passed, and refuses one bound elsewhere than --socket.
func TestPluginListener(t *testing.T) {
	t.Run("passed socket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "cni.sock")
		cmd, out := startActivated(t, path, path)
		// Served by the child: the parent's listener is closed.
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "served\n" {
			t.Fatalf("read %q, %v from the activated child; its output:\n%s", line, err, out)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
	})
	t.Run("socket elsewhere", func(t *testing.T) {
		dir := t.TempDir()
		cmd, out := startActivated(t, filepath.Join(dir, "other.sock"), filepath.Join(dir, "cni.sock"))
		if err := cmd.Wait(); err == nil {
			t.Fatalf("child accepted a socket bound elsewhere:\n%s", out)
		}
		if want := "none of them bound to " + filepath.Join(dir, "cni.sock"); !strings.Contains(out.String(), want) {
			t.Fatalf("child output lacks %q:\n%s", want, out)
		}
	})
}

// TestNotify: READY=1 and STOPPING=1 reach NOTIFY_SOCKET; without it,
// nothing happens.
func TestNotify(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	t.Setenv("NOTIFY_SOCKET", "")
	notify(log, sdReady)

	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	for _, state := range []string{sdReady, sdStopping} {
		notify(log, state)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 128)
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != state {
			t.Fatalf("NOTIFY_SOCKET got %q, %v; want %q", buf[:n], err, state)
		}
	}
	if logs.Len() > 0 {
		t.Errorf("notify logged: %s", logs.String())
	}
}

// TestDefaultsFromEnv: CNI_CONF_DIR, CNI_BIN_DIR and LOG_LEVEL set the
// defaults of their flags; the command line still wins.
func TestDefaultsFromEnv(t *testing.T) {
	t.Setenv("CNI_CONF_DIR", "/plugin/net.d")
	t.Setenv("CNI_BIN_DIR", "/a:/b")
	t.Setenv("LOG_LEVEL", "debug")
	f, err := parseServe(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.confDir != "/plugin/net.d" || f.binDir != "/a:/b" || f.logLevel != "debug" {
		t.Errorf("from the environment: conf %q, bin %q, log %q", f.confDir, f.binDir, f.logLevel)
	}
	f, err = parseServe([]string{"--log-level", "warn", "--cni-bin-dir", "/c"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.logLevel != "warn" || f.binDir != "/c" || f.confDir != "/plugin/net.d" {
		t.Errorf("flags over the environment: conf %q, bin %q, log %q", f.confDir, f.binDir, f.logLevel)
	}
	var help strings.Builder
	parseServe([]string{"-h"}, &help)
	if !strings.Contains(help.String(), `(default "/a:/b")`) {
		t.Errorf("-h does not show the environment's default:\n%s", help.String())
	}
}
