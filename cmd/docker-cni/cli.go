package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/translate"
)

// readOpts are the flags of the commands that read the daemon's state.
type readOpts struct {
	stateDir, adminSocket, format string
}

// readFlags adds --state-dir, --admin-socket and --format to cmd.
func readFlags(cmd *cobra.Command, o *readOpts) {
	stateFlags(cmd, &o.stateDir, &o.adminSocket)
	formatFlag(cmd, &o.format)
}

func (o *readOpts) json() bool { return o.format == formatJSON }

func (o *readOpts) reader(stderr io.Writer) *reader {
	return &reader{adminSocket: o.adminSocket, stateDir: o.stateDir, note: stderr}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// networksCommand lists docker-cni's networks: Docker network <-> CNI
// network, and the engine that has it.
func networksCommand() *cobra.Command {
	var o readOpts
	cmd := &cobra.Command{
		Use:   "networks",
		Short: "List docker-cni's networks: Docker network, CNI network, subnets, endpoints, engine",
		Long: `List docker-cni's networks: each Docker network with its CNI network, whether it
is bound to a conflist of the conf dir or generated, its CNI version, subnets,
endpoints, the engine of --docker-host that has it, and the conflist it is
bound to.

It asks the running daemon over --admin-socket; when none answers it reads
--state-dir, says so on stderr, and cannot tell the engine.`,
		Example: `  docker-cni networks
  docker-cni networks --format json | jq -r '.[] | .ID + " " + .CNINetwork'`,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkFormat(o.format) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listNetworks(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	readFlags(cmd, &o)
	return cmd
}

func listNetworks(ctx context.Context, o *readOpts, stdout, stderr io.Writer) error {
	var nws []admin.NetworkView
	if _, err := o.reader(stderr).read(ctx, "networks", &nws); err != nil {
		return err
	}
	if o.json() {
		if nws == nil {
			nws = []admin.NetworkView{}
		}
		return printJSON(stdout, nws)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tCNI NETWORK\tKIND\tCNI VERSION\tSUBNETS\tENDPOINTS\tENGINE\tCONFLIST")
	for _, nw := range nws {
		if nw.Network == nil {
			continue
		}
		kind, conf := "generated", "-"
		if nw.Bound {
			kind, conf = "bound", orDash(nw.ConfFile)
		}
		if nw.DockerIPAM {
			kind += ",docker-ipam"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", translate.ShortID(nw.ID), nw.CNINetwork, kind, orDash(nw.CNIVersion),
			orDash(strings.Join(nw.Subnets, ",")), nw.EndpointCount, orDash(nw.Engine), conf)
	}
	return tw.Flush()
}

// endpointRow is one line of `docker-cni endpoints` (and `ls`), and its
// JSON.
type endpointRow struct {
	Endpoint, Network, CNINetwork, CNIVersion, Mode, Sandbox, IfName, CNIContainerID, Name, Container string
	Addresses                                                                                         []string
	Ports                                                                                             []translate.PortMapping
	// Leftover is why the endpoint's teardown failed (retried).
	Leftover string `json:",omitempty"`
}

func rowOf(ep admin.EndpointView) endpointRow {
	r := endpointRow{Endpoint: ep.ID, Network: ep.NetworkID, Name: ep.Name, Container: ep.ContainerID, Addresses: ep.Addresses,
		CNINetwork: ep.CNINetwork, CNIVersion: ep.CNIVersion, Ports: ep.Ports}
	if a := ep.Attachment; a != nil {
		r.Mode, r.Sandbox, r.IfName, r.CNIContainerID = a.Mode, a.SandboxKey, a.IfName, a.ContainerID
	}
	if r.Leftover = ep.Leftover; r.Leftover != "" {
		r.Mode = "leftover"
	}
	return r
}

func portList(ps []translate.PortMapping) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return strings.Join(out, ",")
}

// endpointsCommand lists docker-cni's endpoints: CNI attachment and
// published ports, which `docker ps` cannot show for a remote driver. `ls`
// is its alias; --json is --format json.
func endpointsCommand() *cobra.Command {
	var o readOpts
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "endpoints",
		Aliases: []string{"ls"},
		Short:   "List endpoints: container, CNI attachment, addresses, published ports",
		Long: `List every endpoint docker-cni holds: the container, its Docker network and CNI
network, the join mode (handover, direct, move; leftover while its teardown is
retried), the interface, the addresses and the published ports, which docker ps
cannot show for a remote driver. JSON adds the Docker container ID, the CNI
container ID, the sandbox and the network's CNI version.

It asks the running daemon over --admin-socket; when none answers it reads
--state-dir and says so on stderr.`,
		Example: `  docker-cni endpoints
  docker-cni ls --format json
  docker-cni ls --state-dir /var/lib/docker-cni-plugin --admin-socket /var/lib/docker-cni-plugin/run/admin.sock`,
		Args: noArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if asJSON {
				o.format = formatJSON
			}
			return checkFormat(o.format)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listEndpoints(cmd.Context(), &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	readFlags(cmd, &o)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (same as --format json)")
	return cmd
}

func listEndpoints(ctx context.Context, o *readOpts, stdout, stderr io.Writer) error {
	var eps []admin.EndpointView
	if _, err := o.reader(stderr).read(ctx, "endpoints", &eps); err != nil {
		return err
	}
	rows := []endpointRow{}
	for _, ep := range eps {
		if ep.Endpoint != nil {
			rows = append(rows, rowOf(ep))
		}
	}
	if o.json() {
		return printJSON(stdout, rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tCONTAINER\tNETWORK\tCNI NETWORK\tMODE\tIFNAME\tADDRESSES\tPORTS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", translate.ShortID(r.Endpoint), orDash(r.Name), translate.ShortID(r.Network),
			orDash(r.CNINetwork), orDash(r.Mode), orDash(r.IfName), strings.Join(r.Addresses, ","), orDash(portList(r.Ports)))
	}
	return tw.Flush()
}

// inspectCommand shows a container's CNI attachments in full.
func inspectCommand() *cobra.Command {
	var o readOpts
	cmd := &cobra.Command{
		Use:   "inspect CONTAINER",
		Short: "Show a container's CNI attachments, with the cached CNI result",
		Long: `Show a container's docker-cni attachments: endpoint, network, CNI network and
version, state, addresses, MAC, ports, join mode, interface, sandbox, CNI args
and the cached CNI result. CONTAINER is a name, a container ID or an endpoint
ID, or a prefix of one.`,
		Example: `  docker-cni inspect web
  docker-cni inspect --format json 3f2a9c1b`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] == "" {
				return errors.New("usage: docker-cni inspect [--format table|json] CONTAINER (a name, or an ID or endpoint ID, or a prefix of one)")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return containerNames(cmd.Context(), &o), cobra.ShellCompDirectiveNoFileComp
		},
		PreRunE: func(*cobra.Command, []string) error { return checkFormat(o.format) },
		RunE: func(cmd *cobra.Command, args []string) error {
			return inspect(cmd.Context(), &o, args[0], cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	readFlags(cmd, &o)
	return cmd
}

// containerNames are the names of the containers docker-cni holds
// endpoints of, for completion.
func containerNames(ctx context.Context, o *readOpts) []string {
	var eps []admin.EndpointView
	if _, err := o.reader(nil).read(ctx, "endpoints", &eps); err != nil {
		return nil
	}
	var out []string
	for _, ep := range eps {
		if ep.Endpoint != nil && ep.Name != "" {
			out = append(out, ep.Name)
		}
	}
	return out
}

func inspect(ctx context.Context, o *readOpts, container string, stdout, stderr io.Writer) error {
	r := o.reader(stderr)
	var eps []admin.EndpointView
	online, err := r.read(ctx, "endpoints", &eps)
	if err != nil {
		return err
	}
	found := admin.ContainerEndpoints(eps, container)
	if len(found) == 0 {
		where := "the daemon on " + r.adminSocket
		if !online {
			where = "the state in " + r.stateDir
		}
		return fmt.Errorf("no docker-cni endpoint of container %q in %s (a container on 20.10 engines is named once docker-cni learnt it from the engine: try its ID)", container, where)
	}
	if o.json() {
		return printJSON(stdout, found)
	}
	for i, ep := range found {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		if err := printEndpoint(stdout, ep); err != nil {
			return err
		}
	}
	return nil
}

// printEndpoint prints one attachment for people.
func printEndpoint(w io.Writer, ep admin.EndpointView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	line("Endpoint", ep.ID)
	ctr := orDash(ep.Name)
	if ep.ContainerID != "" {
		ctr += " (" + ep.ContainerID + ")"
	}
	line("Container", ctr)
	line("Network", ep.NetworkID)
	line("CNI network", orDash(ep.CNINetwork)+" (CNI version "+orDash(ep.CNIVersion)+")")
	line("State", ep.State)
	if ep.Leftover != "" {
		line("Left over", ep.Leftover+" (retries "+strconv.Itoa(ep.Retries)+", next "+ep.RetryAt.Format(time.RFC3339)+")")
	}
	line("Addresses", orDash(strings.Join(ep.Addresses, ", ")))
	if len(ep.Gateways) > 0 {
		line("Gateways", strings.Join(ep.Gateways, ", "))
	}
	line("MAC", orDash(ep.MAC))
	line("Ports", orDash(portList(ep.Ports)))
	var result []byte
	if a := ep.Attachment; a != nil {
		line("Mode", a.Mode)
		iface := a.IfName
		if a.HostIfName != "" {
			iface += " (in the host as " + a.HostIfName + " until libnetwork takes it)"
		}
		line("Interface", iface)
		line("Sandbox", orDash(a.SandboxKey))
		line("CNI netns", orDash(a.NetNS))
		line("CNI container ID", a.ContainerID)
		var args []string
		for _, kv := range a.Args {
			args = append(args, kv[0]+"="+kv[1])
		}
		line("CNI args", orDash(strings.Join(args, ";")))
		line("Added", a.Added.Format(time.RFC3339))
		result = a.Result
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(result) == 0 {
		fmt.Fprintln(w, "CNI result: -")
		return nil
	}
	var v any
	if err := json.Unmarshal(result, &v); err != nil {
		fmt.Fprintf(w, "CNI result: %s\n", result)
		return nil
	}
	b, _ := json.MarshalIndent(v, "  ", "  ")
	_, err := fmt.Fprintf(w, "CNI result:\n  %s\n", b)
	return err
}
