package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/translate"
)

// cliFlags are the flags of the commands that read the daemon's state.
type cliFlags struct {
	fs                            *flag.FlagSet
	stateDir, adminSocket, format *string
}

func newCLIFlags(name string, stderr io.Writer) *cliFlags {
	fs := newFlagSet(name, stderr)
	stateDir, adminSocket := stateFlags(fs)
	format := fs.String("format", "table", "output format: table or json")
	return &cliFlags{fs: fs, stateDir: stateDir, adminSocket: adminSocket, format: format}
}

// parse parses args and checks --format; it returns the positional
// arguments.
func (c *cliFlags) parse(args []string) ([]string, error) {
	if err := c.fs.Parse(args); err != nil {
		return nil, err
	}
	if *c.format != "table" && *c.format != "json" {
		return nil, fmt.Errorf("--format %q: want table or json", *c.format)
	}
	return c.fs.Args(), nil
}

func (c *cliFlags) json() bool { return *c.format == "json" }

func (c *cliFlags) reader(stderr io.Writer) *reader {
	return &reader{adminSocket: *c.adminSocket, stateDir: *c.stateDir, note: stderr}
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

// networksCmd lists docker-cni's networks: Docker network <-> CNI network.
func networksCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCLIFlags("networks", stderr)
	if rest, err := c.parse(args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("networks: unexpected arguments %v", rest)
	}
	var nws []admin.NetworkView
	if _, err := c.reader(stderr).read(ctx, "networks", &nws); err != nil {
		return err
	}
	if c.json() {
		if nws == nil {
			nws = []admin.NetworkView{}
		}
		return printJSON(stdout, nws)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NETWORK\tCNI NETWORK\tKIND\tCNI VERSION\tSUBNETS\tENDPOINTS\tCONFLIST")
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", translate.ShortID(nw.ID), nw.CNINetwork, kind, orDash(nw.CNIVersion),
			orDash(strings.Join(nw.Subnets, ",")), nw.EndpointCount, conf)
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

// endpointsCmd lists docker-cni's endpoints: CNI attachment and published
// ports, which `docker ps` cannot show for a remote driver. `ls` is its
// alias; --json is --format json.
func endpointsCmd(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	c := newCLIFlags(name, stderr)
	asJSON := c.fs.Bool("json", false, "print JSON (same as --format json)")
	if rest, err := c.parse(args); err != nil {
		return err
	} else if len(rest) > 0 {
		return fmt.Errorf("%s: unexpected arguments %v", name, rest)
	}
	var eps []admin.EndpointView
	if _, err := c.reader(stderr).read(ctx, "endpoints", &eps); err != nil {
		return err
	}
	rows := []endpointRow{}
	for _, ep := range eps {
		if ep.Endpoint != nil {
			rows = append(rows, rowOf(ep))
		}
	}
	if *asJSON || c.json() {
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

// inspectCmd shows a container's CNI attachments in full.
func inspectCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCLIFlags("inspect", stderr)
	rest, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || rest[0] == "" {
		return errors.New("usage: docker-cni inspect [--format table|json] CONTAINER (a name, or an ID or endpoint ID, or a prefix of one)")
	}
	r := c.reader(stderr)
	var eps []admin.EndpointView
	online, err := r.read(ctx, "endpoints", &eps)
	if err != nil {
		return err
	}
	found := admin.ContainerEndpoints(eps, rest[0])
	if len(found) == 0 {
		where := "the daemon on " + r.adminSocket
		if !online {
			where = "the state in " + r.stateDir
		}
		return fmt.Errorf("no docker-cni endpoint of container %q in %s (a container on 20.10 engines is named once docker-cni learnt it from the engine: try its ID)", rest[0], where)
	}
	if c.json() {
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

// gcCmd asks the running daemon for a reconcile pass now.
func gcCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gc", stderr)
	_, adminSocket := stateFlags(fs)
	format := fs.String("format", "table", "output format: table or json")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the pass")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("gc: unexpected arguments %v", fs.Args())
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	c := admin.NewClient(*adminSocket)
	if err := c.Ping(ctx); err != nil {
		return err
	}
	var rep admin.GCReport
	if err := c.Post(ctx, "/v1/gc", &rep); err != nil {
		return err
	}
	if *format == "json" {
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

// versionCmd prints the CLI's version and the running daemon's.
func versionCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", stderr)
	adminSocket := fs.String("admin-socket", defaultRunDir+"/"+adminSocketName, "the daemon's admin API socket")
	format := fs.String("format", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	out := struct {
		Version string
		// Daemon is the running daemon's version, "" when none answers;
		// DaemonError says why not.
		Daemon      string `json:",omitempty"`
		DaemonError string `json:",omitempty"`
	}{Version: version}
	var vi admin.VersionInfo
	c := admin.NewClient(*adminSocket)
	err := c.Ping(ctx)
	if err == nil {
		err = c.Get(ctx, "/v1/version", &vi)
	}
	var nr *admin.NotRunningError
	switch {
	case errors.As(err, &nr):
		out.DaemonError = "not running: nothing answers on " + *adminSocket
	case err != nil:
		out.DaemonError = err.Error()
	default:
		out.Daemon = vi.Version
	}
	if *format == "json" {
		return printJSON(stdout, out)
	}
	fmt.Fprintln(stdout, "docker-cni", version)
	if out.Daemon != "" {
		fmt.Fprintf(stdout, "daemon: %s (%s)\n", out.Daemon, *adminSocket)
	} else {
		fmt.Fprintf(stdout, "daemon: %s\n", out.DaemonError)
	}
	return nil
}
