package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the tests run this test binary as the plugin itself.
func TestMain(m *testing.M) {
	if os.Getenv("FAULT_TEST_AS_PLUGIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const prev100 = `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:e7:34:05","sandbox":"/run/netns/x"}],` +
	`"ips":[{"interface":0,"address":"10.231.52.5/24","gateway":"10.231.52.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{}}`

func confWith(t *testing.T, control, version, prev string) []byte {
	t.Helper()
	c := map[string]any{"cniVersion": version, "name": "n", "type": "fault", "control": control}
	if prev != "" {
		c["prevResult"] = json.RawMessage(prev)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mode
		err  bool
	}{
		{"", modePass, false},
		{"pass\n", modePass, false},
		{" fail ", modeFail, false},
		{"garbage", modeGarbage, false},
		{"hang", modeHang, false},
		{"block\n", modeBlock, false},
		{"explode", "", true},
		{"FAIL", "", true},
	} {
		got, err := parseMode(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("parseMode(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestReadMode(t *testing.T) {
	dir := t.TempDir()
	if m, err := readMode(dir, "ADD"); err != nil || m != modePass {
		t.Errorf("no control file: %q, %v; want pass", m, err)
	}
	os.WriteFile(filepath.Join(dir, "DEL"), []byte("hang\n"), 0o644)
	if m, err := readMode(dir, "DEL"); err != nil || m != modeHang {
		t.Errorf("DEL says hang: got %q, %v", m, err)
	}
	os.WriteFile(filepath.Join(dir, "CHECK"), []byte("nope"), 0o644)
	if _, err := readMode(dir, "CHECK"); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "CHECK")) {
		t.Errorf("unknown mode: error %v, want one naming the file", err)
	}
}

func TestLoadConf(t *testing.T) {
	if _, err := loadConf([]byte(`{"cniVersion":"1.0.0","name":"n","type":"fault"}`)); err == nil || !strings.Contains(err.Error(), `"control"`) {
		t.Errorf("conf without control: %v, want an error naming control", err)
	}
	if _, err := loadConf([]byte(`{"control":`)); err == nil {
		t.Error("truncated conf: no error")
	}
	c, err := loadConf(confWith(t, "/x", "1.0.0", prev100))
	if err != nil {
		t.Fatal(err)
	}
	if c.Control != "/x" || c.PrevResult == nil {
		t.Errorf("conf: control %q, prevResult %v", c.Control, c.PrevResult)
	}
}

func TestPassResult(t *testing.T) {
	for _, tc := range []struct {
		name, version, prev, want string
	}{{
		name: "same version", version: "1.0.0", prev: prev100,
		want: `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:e7:34:05","sandbox":"/run/netns/x"}],` +
			`"ips":[{"interface":0,"address":"10.231.52.5/24","gateway":"10.231.52.1"}],"routes":[{"dst":"0.0.0.0/0"}]}`,
	}, {
		name: "0.4.0", version: "0.4.0",
		prev: `{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.231.52.5/24"}],"dns":{}}`,
		want: `{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.231.52.5/24"}],"dns":{}}`,
	}, {
		name: "none", version: "1.0.0",
		want: `{"cniVersion":"1.0.0"}`,
	}, {
		name: "none, 0.3.1", version: "0.3.1",
		want: `{"cniVersion":"0.3.1","dns":{}}`,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := loadConf(confWith(t, "/x", tc.version, tc.prev))
			if err != nil {
				t.Fatal(err)
			}
			r, err := passResult(c)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := r.PrintTo(&buf); err != nil {
				t.Fatal(err)
			}
			if got, want := canonical(t, buf.String()), canonical(t, tc.want); got != want {
				t.Errorf("result\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// canonical re-encodes a JSON document with sorted keys.
func canonical(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRecordCall(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"ADD", "DEL"} {
		if err := recordCall(dir, c, "ctr1"); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "calls"))
	if string(b) != "ADD ctr1\nDEL ctr1\n" {
		t.Errorf("calls file: %q", b)
	}
}

func TestWaitUnblocked(t *testing.T) {
	dir := t.TempDir()
	ctl := filepath.Join(dir, "ADD")
	os.WriteFile(ctl, []byte("block"), 0o644)
	done := make(chan error, 1)
	go func() { done <- waitUnblocked(dir, "ADD", "ctr1", time.Millisecond) }()
	marker := filepath.Join(dir, "ADD.blocked")
	for i := 0; ; i++ {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "ctr1\n" {
			break
		}
		if i == 1000 {
			t.Fatal("no ADD.blocked holding the container ID")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("returned while blocked: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	os.WriteFile(ctl, []byte("pass"), 0o644)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still blocked after the control file said pass")
	}
}

// plugin runs this test binary as the plugin with command cmd.
func plugin(t *testing.T, cmd string, stdin []byte) *exec.Cmd {
	t.Helper()
	p := exec.Command(os.Args[0])
	// GORACE: no 1 s pause at exit under -race.
	p.Env = append(os.Environ(), "FAULT_TEST_AS_PLUGIN=1", "GORACE=atexit_sleep_ms=0", "CNI_COMMAND="+cmd, "CNI_CONTAINERID=ctr1",
		"CNI_NETNS=/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent")
	p.Stdin = bytes.NewReader(stdin)
	return p
}

// TestModes runs the plugin as libcni does and checks exit status and
// stdout per mode.
func TestModes(t *testing.T) {
	for _, tc := range []struct {
		cmd, mode string
		wantErr   bool
		want      string // substring of stdout
	}{
		{"ADD", "", false, `"address": "10.231.52.5/24"`},
		{"ADD", "pass", false, `"cniVersion": "1.0.0"`},
		{"ADD", "fail", true, `"code": 999`},
		{"ADD", "garbage", false, "not a CNI result"},
		{"DEL", "fail", true, `"msg": "fault: injected failure on DEL"`},
		{"DEL", "", false, ""},
		{"CHECK", "pass", false, ""},
		{"ADD", "bogus", true, "unknown mode"},
	} {
		t.Run(tc.cmd+"-"+tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			if tc.mode != "" {
				os.WriteFile(filepath.Join(dir, tc.cmd), []byte(tc.mode), 0o644)
			}
			p := plugin(t, tc.cmd, confWith(t, dir, "1.0.0", prev100))
			var out bytes.Buffer
			p.Stdout = &out
			err := p.Run()
			if (err != nil) != tc.wantErr {
				t.Errorf("exit: %v, want error %v; stdout %s", err, tc.wantErr, out.String())
			}
			if !strings.Contains(out.String(), tc.want) || (tc.want == "" && out.Len() != 0) {
				t.Errorf("stdout %q, want %q", out.String(), tc.want)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "calls")); string(b) != tc.cmd+" ctr1\n" {
				t.Errorf("calls file: %q", b)
			}
		})
	}
}

func TestHangAndBlock(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ADD"), []byte("hang"), 0o644)
	os.WriteFile(filepath.Join(dir, "DEL"), []byte("block"), 0o644)
	hang := plugin(t, "ADD", confWith(t, dir, "1.0.0", prev100))
	block := plugin(t, "DEL", confWith(t, dir, "1.0.0", ""))
	for _, p := range []*exec.Cmd{hang, block} {
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
	}
	hangDone, blockDone := make(chan error, 1), make(chan error, 1)
	go func() { hangDone <- hang.Wait() }()
	go func() { blockDone <- block.Wait() }()
	t.Cleanup(func() { hang.Process.Kill(); block.Process.Kill() })

	waitFile(t, filepath.Join(dir, "DEL.blocked"))
	select {
	case err := <-blockDone:
		t.Fatalf("blocked DEL exited: %v", err)
	case err := <-hangDone:
		t.Fatalf("hanging ADD exited: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	os.WriteFile(filepath.Join(dir, "DEL"), []byte("pass"), 0o644)
	select {
	case err := <-blockDone:
		if err != nil {
			t.Errorf("DEL after unblock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("DEL still blocked after the control file said pass")
	}
	select {
	case err := <-hangDone:
		t.Fatalf("hanging ADD exited: %v", err)
	default:
	}
	hang.Process.Kill()
	<-hangDone
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}
