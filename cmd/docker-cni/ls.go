package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// ls prints docker-cni's endpoints: network, CNI attachment and published
// ports, which `docker ps` cannot show for a remote driver.
func ls(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("ls", stderr)
	stateDir, adminSocket := stateFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var eps []*state.Endpoint
	var nws []*state.Network
	if err := readTable(ctx, *adminSocket, *stateDir, "endpoints", &eps); err != nil {
		return err
	}
	if err := readTable(ctx, *adminSocket, *stateDir, "networks", &nws); err != nil {
		return err
	}
	byID := map[string]*state.Network{}
	for _, nw := range nws {
		byID[nw.ID] = nw
	}
	type row struct {
		Endpoint, Network, CNINetwork, CNIVersion, Mode, Sandbox, IfName, CNIContainerID, Name, Container string
		Addresses                                                                                         []string
		Ports                                                                                             []translate.PortMapping
		// Leftover is why the endpoint's teardown failed (retried).
		Leftover string `json:",omitempty"`
	}
	var rows []row
	for _, ep := range eps {
		r := row{Endpoint: ep.ID, Network: ep.NetworkID, Name: ep.Name, Container: ep.ContainerID, Addresses: ep.Addresses}
		if nw, ok := byID[ep.NetworkID]; ok {
			r.CNINetwork, r.CNIVersion = nw.CNINetwork, nw.CNIVersion
		}
		if a := ep.Attachment; a != nil {
			r.Mode, r.Sandbox, r.IfName, r.CNIContainerID = a.Mode, a.SandboxKey, a.IfName, a.ContainerID
			if len(a.Published) > 0 {
				json.Unmarshal(a.Published, &r.Ports)
			}
		}
		if r.Leftover = ep.Leftover; r.Leftover != "" {
			r.Mode = "leftover"
		}
		rows = append(rows, r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tCONTAINER\tNETWORK\tCNI NETWORK\tMODE\tIFNAME\tADDRESSES\tPORTS")
	for _, r := range rows {
		var ports []string
		for _, p := range r.Ports {
			ports = append(ports, p.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", translate.ShortID(r.Endpoint), orDash(r.Name), translate.ShortID(r.Network),
			r.CNINetwork, orDash(r.Mode), orDash(r.IfName), strings.Join(r.Addresses, ","), orDash(strings.Join(ports, ",")))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
