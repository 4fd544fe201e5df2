package main

import (
	"github.com/spf13/cobra"
)

// Defaults shared by the daemon and the CLI.
const (
	defaultStateDir   = "/var/lib/docker-cni"
	defaultRunDir     = "/run/docker-cni"
	adminSocketName   = "admin.sock"
	defaultDockerHost = "unix:///var/run/docker.sock"
	defaultConfDir    = "/etc/cni/net.d"
	defaultBinDir     = "/opt/cni/bin:/usr/lib/cni"
)

// stateFlags are the CLI's flags saying where the daemon keeps its state
// and serves its admin API; stateDir nil leaves --state-dir out.
func stateFlags(cmd *cobra.Command, stateDir, adminSocket *string) {
	if stateDir != nil {
		cmd.Flags().StringVar(stateDir, "state-dir", defaultStateDir, "the daemon's state dir, read when the daemon is not running")
		cmd.MarkFlagDirname("state-dir")
	}
	cmd.Flags().StringVar(adminSocket, "admin-socket", defaultRunDir+"/"+adminSocketName, "the daemon's admin API socket")
	cmd.MarkFlagFilename("admin-socket", "sock")
}

// completeFlagValues completes the flag name of cmd with values.
func completeFlagValues(cmd *cobra.Command, name string, values ...string) {
	cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}
