//go:build gendocs

package main

// `docker-cni gendocs DIR`, in builds with the gendocs tag only (make
// docs-gen): the man pages and shell completions of this command tree,
// written under DIR for make install and the Debian package. The release
// binary carries neither the command nor the man page generator.

import (
	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/internal/clidoc"
)

func init() {
	extraCommands = append(extraCommands, func() *cobra.Command {
		return &cobra.Command{
			Use:    "gendocs DIR",
			Short:  "Write the man pages and shell completions under DIR",
			Hidden: true,
			Args:   cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return clidoc.Write(cmd.Root(), args[0], "docker-cni "+version)
			},
		}
	})
}
