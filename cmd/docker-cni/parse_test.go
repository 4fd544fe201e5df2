package main

import (
	"context"
	"io"
)

// parseServe parses a `docker-cni serve` command line as the command does,
// without serving; help goes to out.
func parseServe(args []string, out io.Writer) (serveFlags, error) {
	var got serveFlags
	cmd := serveCommand(func(_ context.Context, f serveFlags, _ io.Writer) error { got = f; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return got, cmd.Execute()
}

// parseCreate parses a `docker-cni network create` command line as the
// command does, without creating.
func parseCreate(args []string, out io.Writer) (createFlags, error) {
	var got createFlags
	cmd := networkCreateCommand(func(_ context.Context, f createFlags, _ io.Writer) error { got = f; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	return got, cmd.Execute()
}
