package main

import (
	"flag"
	"io"
)

type ioWriter = io.Writer

// Defaults shared by the daemon and the CLI.
const (
	defaultStateDir = "/var/lib/docker-cni"
	defaultRunDir   = "/run/docker-cni"
	adminSocketName = "admin.sock"
)

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// stateFlags are the CLI's flags saying where the daemon keeps its state
// and serves its admin API.
func stateFlags(fs *flag.FlagSet) (stateDir, adminSocket *string) {
	stateDir = fs.String("state-dir", defaultStateDir, "the daemon's state dir, read when the daemon is not running")
	adminSocket = fs.String("admin-socket", defaultRunDir+"/"+adminSocketName, "the daemon's admin API socket")
	return stateDir, adminSocket
}
