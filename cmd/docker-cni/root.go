package main

// The command tree (cobra, as docker, kubectl and nerdctl use): GNU-style
// flags, `help CMD` and `CMD --help` with examples, shell completions, one
// line on stderr per error. Each command's work lives in its own file; this
// one only builds the tree and the conventions every command shares.

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// extraCommands are commands only some builds add (the gendocs build tag).
var extraCommands []func() *cobra.Command

// newRoot returns the command tree writing to stdout and stderr.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "docker-cni",
		Short: "Docker network and IPAM driver over the node's CNI plugins",
		Long: `docker-cni lets docker run containers join CNI networks: the same networks,
bridges and IPAM stores that kubelet, containerd and CRI-O use for pods. The
daemon (docker-cni serve) serves Docker's remote network and IPAM driver
protocols on /run/docker/plugins/cni.sock, so both drivers are named "cni";
the other commands read its state, ask it for a reconcile pass, create bound
networks and check the node.`,
		Example: `  # run the daemon
  docker-cni serve --docker-host unix:///var/run/docker.sock
  # a Docker network bound to the conflist the node's pods use
  docker-cni network create podnet --bind k8s-pod-network
  # what docker-cni holds
  docker-cni networks
  docker-cni ls`,
		Version:           version,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              unknownSubcommand,
		RunE:              func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	// Never cobra's Set*Template: a template links text/template, whose
	// reflection keeps every exported method of the binary alive (3.8 MB
	// more, measured); its default help, usage and version funcs do not.
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SuggestionsMinimumDistance = 2
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s --help')", subPath(cmd), err, cmd.CommandPath())
	})
	root.AddCommand(serveCommand(serve), networksCommand(), endpointsCommand(), inspectCommand(),
		gcCommand(), dumpCommand(), networkCommand(), doctorCommand(), versionCommand())
	for _, c := range extraCommands {
		root.AddCommand(c())
	}
	return root
}

// run runs the command line args (without the program name).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(modernFlags(root, args, stderr))
	return root.ExecuteContext(ctx)
}

// unknownSubcommand refuses arguments to a command that only groups others,
// in one line, with cobra's suggestion.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	s := cmd.SuggestionsFor(args[0])
	for _, c := range cmd.Commands() {
		for _, alias := range c.Aliases {
			if strings.HasPrefix(args[0], alias) || strings.HasPrefix(alias, args[0]) {
				s = append(s, alias)
			}
		}
	}
	if len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return fmt.Errorf("%s; '%s --help' lists the commands", msg, cmd.CommandPath())
}

// subPath is cmd's path below the root ("network create"), for errors
// main prefixes with "docker-cni: ".
func subPath(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name()
	}
	return strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
}

// noArgs refuses positional arguments, in one line.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s: unexpected arguments %v (see '%s --help')", subPath(cmd), args, cmd.CommandPath())
	}
	return nil
}

// modernFlags rewrites the single-dash long flags of docker-cni before it
// used cobra (-cni-bin-dir, -json), which Go's flag package took and old
// unit files or plugin settings may still pass, to their GNU spelling,
// saying so on stderr. Only the flags of the command named are rewritten,
// and nothing after "--".
func modernFlags(root *cobra.Command, args []string, stderr io.Writer) []string {
	cmd, i := root, 0
	for ; i < len(args) && !strings.HasPrefix(args[i], "-"); i++ {
		next := subcommand(cmd, args[i])
		if next == nil {
			break
		}
		cmd = next
	}
	out := append([]string(nil), args...)
	for ; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := lookupFlag(cmd, name)
		switch {
		case !strings.HasPrefix(a, "-") || f == nil && name != "help":
			continue
		case !strings.HasPrefix(a, "--") && len(name) > 1:
			out[i] = "-" + a
			fmt.Fprintf(stderr, "docker-cni: %s is an old spelling: use -%s\n", a, strings.SplitN(a, "=", 2)[0])
		}
		// A flag that takes a value and was given none with "=" takes
		// the next argument, whatever it looks like.
		if f != nil && f.NoOptDefVal == "" && !hasValue {
			i++
		}
	}
	return out
}

// subcommand is cmd's subcommand called name (or an alias), or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}

// lookupFlag finds a long flag of cmd, its own or inherited.
func lookupFlag(cmd *cobra.Command, name string) *pflag.Flag {
	for c := cmd; c != nil; c = c.Parent() {
		if f := c.Flags().Lookup(name); f != nil {
			return f
		}
		if f := c.PersistentFlags().Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// Output formats of the commands that list things.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// formatFlag adds --format table|json to cmd, with its completion.
func formatFlag(cmd *cobra.Command, into *string) {
	cmd.Flags().StringVar(into, "format", formatTable, "output format: table or json")
	cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{formatTable, formatJSON}, cobra.ShellCompDirectiveNoFileComp))
}

// checkFormat refuses a --format other than table and json.
func checkFormat(format string) error {
	if format != formatTable && format != formatJSON {
		return fmt.Errorf("--format %q: want table or json", format)
	}
	return nil
}
