// Command fault is a test-only CNI plugin that injects faults into a chain.
// It is not a stand-in for any real plugin: the reliability tests put it in a
// conflist to make a chain fail, hang, print garbage or stop half-way at a
// point the test chooses, and then check what docker-cni makes of it (kill -9
// mid-ADD or mid-DEL, plugin errors, timeouts, unparsable results).
//
// It is a chained plugin: it may appear anywhere in a conflist after the main
// plugin. Its conf names a control directory:
//
//	{"type": "fault", "control": "/path/to/dir"}
//
// On each ADD, DEL and CHECK it first appends one line "<COMMAND>
// <containerID>" (e.g. "ADD 1f2e...") to <control>/calls, so tests see it ran,
// then reads the file <control>/<COMMAND> (ADD, DEL or CHECK), whose content
// is one mode:
//   - absent, empty or "pass": a no-op chained plugin. ADD prints the
//     prevResult converted to the conf's cniVersion (an empty result when
//     there is none); DEL and CHECK succeed and print nothing;
//   - "fail": exits with a CNI error, code 999, msg "fault: injected failure
//     on <COMMAND>";
//   - "garbage": prints non-JSON text on stdout and exits 0;
//   - "hang": sleeps until killed;
//   - "block": creates <control>/<COMMAND>.blocked (holding the container ID;
//     left in place afterwards), waits until <control>/<COMMAND> no longer
//     says "block" (polled every 50 ms), then passes.
//
// Any other content is a CNI error naming the file and the mode. GC and
// STATUS succeed and do nothing. It reports CNI versions 0.1.0 to 1.1.0.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// errFaultCode is the CNI error code of an injected failure.
const errFaultCode = 999

// blockPoll is how often a blocked command looks at its control file.
const blockPoll = 50 * time.Millisecond

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{
		Add:    func(a *skel.CmdArgs) error { return handle("ADD", a, os.Stdout) },
		Del:    func(a *skel.CmdArgs) error { return handle("DEL", a, os.Stdout) },
		Check:  func(a *skel.CmdArgs) error { return handle("CHECK", a, os.Stdout) },
		GC:     func(*skel.CmdArgs) error { return nil },
		Status: func(*skel.CmdArgs) error { return nil },
	}, version.All, "CNI plugin fault (docker-cni test-only fault injector)")
}

// handle runs one command under the mode its control file gives.
func handle(cmd string, args *skel.CmdArgs, stdout io.Writer) error {
	c, err := loadConf(args.StdinData)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	if err := recordCall(c.Control, cmd, args.ContainerID); err != nil {
		return types.NewError(types.ErrIOFailure, err.Error(), "")
	}
	m, err := readMode(c.Control, cmd)
	if err != nil {
		return types.NewError(types.ErrInvalidNetworkConfig, err.Error(), "")
	}
	switch m {
	case modeFail:
		return types.NewError(errFaultCode, "fault: injected failure on "+cmd, "")
	case modeGarbage:
		_, err := io.WriteString(stdout, garbage)
		return err
	case modeHang:
		for {
			time.Sleep(time.Hour)
		}
	case modeBlock:
		if err := waitUnblocked(c.Control, cmd, args.ContainerID, blockPoll); err != nil {
			return types.NewError(types.ErrIOFailure, err.Error(), "")
		}
	}
	if cmd != "ADD" {
		return nil
	}
	r, err := passResult(c)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, err.Error(), "")
	}
	if err := r.PrintTo(stdout); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	return nil
}
