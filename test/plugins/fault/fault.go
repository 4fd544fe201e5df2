package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// mode is what a command does, read from its control file.
type mode string

const (
	modePass    mode = "pass"
	modeFail    mode = "fail"
	modeGarbage mode = "garbage"
	modeHang    mode = "hang"
	modeBlock   mode = "block"
)

// garbage is what the garbage mode prints: not JSON, not a CNI result.
const garbage = "fault: this is not a CNI result {{{\n"

// conf is the plugin's conf: the CNI basics (cniVersion, prevResult) and
// the control directory.
type conf struct {
	types.PluginConf
	Control string `json:"control"`
}

func loadConf(stdin []byte) (*conf, error) {
	c := &conf{}
	if err := json.Unmarshal(stdin, c); err != nil {
		return nil, fmt.Errorf("parse fault conf: %w", err)
	}
	if c.Control == "" {
		return nil, errors.New("fault conf: \"control\" (the control directory) is missing")
	}
	if err := version.ParsePrevResult(&c.PluginConf); err != nil {
		return nil, fmt.Errorf("fault conf: %w", err)
	}
	return c, nil
}

// parseMode reads a control file's content; empty is pass.
func parseMode(content string) (mode, error) {
	switch m := mode(strings.TrimSpace(content)); m {
	case "":
		return modePass, nil
	case modePass, modeFail, modeGarbage, modeHang, modeBlock:
		return m, nil
	default:
		return "", fmt.Errorf("unknown mode %q (pass, fail, garbage, hang, block)", m)
	}
}

// readMode reads the mode of cmd from control/cmd; a missing file is pass.
func readMode(control, cmd string) (mode, error) {
	path := filepath.Join(control, cmd)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return modePass, nil
	}
	if err != nil {
		return "", fmt.Errorf("read fault control file: %w", err)
	}
	m, err := parseMode(string(b))
	if err != nil {
		return "", fmt.Errorf("fault control file %s: %w", path, err)
	}
	return m, nil
}

// recordCall appends "<cmd> <containerID>" to control/calls in one write.
func recordCall(control, cmd, containerID string) error {
	path := filepath.Join(control, "calls")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("record fault call: %w", err)
	}
	_, err = f.WriteString(cmd + " " + containerID + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("record fault call in %s: %w", path, err)
	}
	return nil
}

// waitUnblocked creates control/cmd.blocked and returns once control/cmd no
// longer says block (or is gone), looking every poll.
func waitUnblocked(control, cmd, containerID string, poll time.Duration) error {
	marker := filepath.Join(control, cmd+".blocked")
	if err := os.WriteFile(marker, []byte(containerID+"\n"), 0o644); err != nil {
		return fmt.Errorf("mark %s blocked: %w", cmd, err)
	}
	for {
		m, err := readMode(control, cmd)
		if err != nil || m != modeBlock {
			return nil
		}
		time.Sleep(poll)
	}
}

// passResult is what ADD prints in pass mode: the prevResult converted to
// the conf's cniVersion, or an empty result of that version.
func passResult(c *conf) (types.Result, error) {
	r := c.PrevResult
	if r == nil {
		r = &current.Result{CNIVersion: current.ImplementedSpecVersion}
	}
	v := c.CNIVersion
	if v == "" {
		v = "0.1.0" // what a conf without cniVersion means to libcni
	}
	out, err := r.GetAsVersion(v)
	if err != nil {
		return nil, fmt.Errorf("convert prevResult to %s: %w", v, err)
	}
	return out, nil
}
