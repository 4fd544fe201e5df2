package main

// The commands that talk to the running daemon beyond reading its tables:
// gc, version, and dump (one table as JSON).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/admin"
)

// gcCommand asks the running daemon for a reconcile pass now.
func gcCommand() *cobra.Command {
	var adminSocket, format, stateDir string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Ask the running daemon for a reconcile pass now, and wait for it",
		Long: `Ask the running daemon for a reconcile pass now (the one --reconcile-interval
runs, after the pass in progress if any), with CNI CHECK of every container
where it applies, and wait for it. Prints how long it took and each step that
failed; exits 1 if a step failed.`,
		Example: `  docker-cni gc
  docker-cni gc --format json --timeout 2m`,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkFormat(format) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return gc(ctx, adminSocket, format, cmd)
		},
	}
	// --state-dir is taken, as by the commands that read the state, and
	// unused: a pass needs the daemon.
	stateFlags(cmd, &stateDir, &adminSocket)
	cmd.Flags().MarkHidden("state-dir")
	formatFlag(cmd, &format)
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the pass")
	return cmd
}

func gc(ctx context.Context, adminSocket, format string, cmd *cobra.Command) error {
	stdout := cmd.OutOrStdout()
	c := admin.NewClient(adminSocket)
	if err := c.Ping(ctx); err != nil {
		return err
	}
	var rep admin.GCReport
	if err := c.Post(ctx, "/v1/gc", &rep); err != nil {
		return err
	}
	if format == formatJSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "reconcile pass done in %s\n", rep.Took.Round(time.Millisecond))
		for _, e := range rep.Errors {
			fmt.Fprintf(stdout, "  failed: %s\n", e)
		}
	}
	if len(rep.Errors) > 0 {
		return fmt.Errorf("reconcile pass: %d step(s) failed (the daemon's log has more)", len(rep.Errors))
	}
	return nil
}

// versionCommand prints the CLI's version and the running daemon's.
func versionCommand() *cobra.Command {
	var adminSocket, format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version and the running daemon's",
		Example: `  docker-cni version
  docker-cni version --format json`,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkFormat(format) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.Context(), adminSocket, format, cmd)
		},
	}
	stateFlags(cmd, nil, &adminSocket)
	formatFlag(cmd, &format)
	return cmd
}

func printVersion(ctx context.Context, adminSocket, format string, cmd *cobra.Command) error {
	stdout := cmd.OutOrStdout()
	out := struct {
		Version string
		// Daemon is the running daemon's version, "" when none answers;
		// DaemonError says why not.
		Daemon      string `json:",omitempty"`
		DaemonError string `json:",omitempty"`
	}{Version: version}
	var vi admin.VersionInfo
	c := admin.NewClient(adminSocket)
	err := c.Ping(ctx)
	if err == nil {
		err = c.Get(ctx, "/v1/version", &vi)
	}
	var nr *admin.NotRunningError
	switch {
	case errors.As(err, &nr):
		out.DaemonError = "not running: nothing answers on " + adminSocket
	case err != nil:
		out.DaemonError = err.Error()
	default:
		out.Daemon = vi.Version
	}
	if format == formatJSON {
		return printJSON(stdout, out)
	}
	fmt.Fprintln(stdout, "docker-cni", version)
	if out.Daemon != "" {
		fmt.Fprintf(stdout, "daemon: %s (%s)\n", out.Daemon, adminSocket)
	} else {
		fmt.Fprintf(stdout, "daemon: %s\n", out.DaemonError)
	}
	return nil
}

// dumpCommand prints one state table as JSON, for debugging and tests.
func dumpCommand() *cobra.Command {
	var stateDir, adminSocket string
	tables := []string{"networks", "endpoints", "pools", "reservations"}
	cmd := &cobra.Command{
		Use:   "dump networks|endpoints|pools|reservations",
		Short: "Print one state table as JSON",
		Long: `Print one of docker-cni's state tables as JSON, as the daemon's admin API serves
it (or, when no daemon answers, as the state dir holds it).`,
		Example: `  docker-cni dump reservations
  docker-cni dump endpoints | jq '.[] | select(.Leftover != null)'`,
		ValidArgs: tables,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || cobra.OnlyValidArgs(cmd, args) != nil {
				return errors.New("usage: docker-cni dump networks|endpoints|pools|reservations")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var rows []json.RawMessage
			r := &reader{adminSocket: adminSocket, stateDir: stateDir}
			if _, err := r.read(cmd.Context(), args[0], &rows); err != nil {
				return err
			}
			if rows == nil {
				rows = []json.RawMessage{}
			}
			return printJSON(cmd.OutOrStdout(), rows)
		},
	}
	stateFlags(cmd, &stateDir, &adminSocket)
	return cmd
}
