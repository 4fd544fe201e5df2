package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/translate"
)

// networkCommand groups `docker-cni network create`.
func networkCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "network",
		Short: "Create Docker networks bound to CNI networks",
		Args:  unknownSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(networkCreateCommand(networkCreate))
	return cmd
}

type createFlags struct {
	name, bind, confDir, host, driver string
	subnets, gateways, labels, opts   []string
}

// networkCreateCommand is `docker-cni network create`; it runs create with
// the flags parsed.
func networkCreateCommand(create func(context.Context, createFlags, io.Writer) error) *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create NAME --bind CNI_NETWORK",
		Short: "Create a Docker network bound to a CNI network, subnets filled in",
		Long: `Create the Docker network NAME bound to the CNI network CNI_NETWORK (the "name"
of a conflist in --cni-conf-dir), through the Docker API of --docker-host. The
driver, IPAM driver, options (cni.network, cni.version), subnets and gateways
come from the conflist (for flannel, from its subnet file), so you need not
look them up: Docker insists on --subnet once the pods' bridge routes it.
Prints the new network's ID.

--subnet is needed only for IPAM plugins whose ranges are not in the conflist
(calico-ipam pools by name, unknown plugins); it names the range.`,
		Example: `  docker-cni network create podnet --bind k8s-pod-network
  docker-cni network create calinet --bind k8s-pod-network --subnet 10.244.7.0/24 --opt cni.join=direct
  # which is, for the first, spelled out for Docker:
  docker network create -d cni --ipam-driver cni --ipam-opt cni.network=k8s-pod-network \
    -o cni.network=k8s-pod-network -o cni.version=1.0.0 --subnet 10.244.1.0/24 --gateway 10.244.1.1 podnet`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("network create: unexpected arguments %v", args[1:])
			}
			if len(args) == 1 {
				f.name = args[0]
			}
			if f.name == "" || f.bind == "" {
				return errors.New("usage: docker-cni network create NAME --bind CNI_NETWORK [flags]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return create(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.bind, "bind", "", "the CNI network (conflist name) to bind to (required)")
	fs.StringVar(&f.confDir, "cni-conf-dir", defaultConfDir, "where the conflist is looked up, as the daemon does ($CNI_CONF_DIR)")
	fs.StringVar(&f.host, "docker-host", envOr("DOCKER_HOST", defaultDockerHost), "the Docker engine to create the network on")
	fs.StringVar(&f.driver, "driver", "cni", "the docker-cni driver name (its socket's base name)")
	fs.StringArrayVar(&f.subnets, "subnet", nil, "a subnet of the CNI network to use (repeatable; needed for IPAM plugins whose ranges are not in the conflist)")
	fs.StringArrayVar(&f.gateways, "gateway", nil, "the gateway of a --subnet whose IPAM plugin does not say it (repeatable)")
	fs.StringArrayVar(&f.labels, "label", nil, "a network label KEY=VALUE (repeatable)")
	fs.StringArrayVar(&f.opts, "opt", nil, "a driver option KEY=VALUE, as docker network create -o (repeatable)")
	cmd.MarkFlagDirname("cni-conf-dir")
	cmd.RegisterFlagCompletionFunc("bind", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return conflistNames(f.confDir), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.ValidArgsFunction = cobra.NoFileCompletions
	defaultsFromEnv(fs)
	return cmd
}

// conflistNames are the CNI networks of dir, for completion: each with
// its file.
func conflistNames(dir string) []string {
	files, _, err := cniconf.Load(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, f := range files {
		out = append(out, f.Name+"\t"+f.Path)
	}
	return out
}

// networkCreate creates the Docker network f describes, bound to a CNI
// network, through the Docker API, with the driver, IPAM driver, options,
// subnets and gateways filled in from the conflist (or flannel's subnet
// file).
func networkCreate(ctx context.Context, f createFlags, stdout io.Writer) error {
	req, err := f.request()
	if err != nil {
		return err
	}
	c, err := client.NewClientWithOpts(client.WithHost(f.host), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker host %s: %w", f.host, err)
	}
	defer c.Close()
	resp, err := c.NetworkCreate(ctx, f.name, req)
	if err != nil {
		return fmt.Errorf("create Docker network %s bound to CNI network %q: %w", f.name, f.bind, err)
	}
	fmt.Fprintln(stdout, resp.ID)
	return nil
}

// request builds Docker's network create request from the conflist.
func (f createFlags) request() (network.CreateOptions, error) {
	var subnets []netip.Prefix
	for _, s := range f.subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return network.CreateOptions{}, fmt.Errorf("--subnet %q: %w", s, err)
		}
		subnets = append(subnets, p.Masked())
	}
	file, err := cniconf.Find(f.confDir, f.bind)
	if err != nil {
		return network.CreateOptions{}, err
	}
	pl, err := cniconf.Parse(file.Bytes)
	if err != nil {
		return network.CreateOptions{}, fmt.Errorf("CNI network %q (%s): %w", f.bind, file.Path, err)
	}
	pools, err := translate.BindingPools(pl, subnets)
	if err != nil {
		return network.CreateOptions{}, err
	}
	opts := map[string]string{translate.OptNetwork: f.bind, translate.OptVersion: pl.CNIVersion}
	if err := keyValues(f.opts, opts, "--opt"); err != nil {
		return network.CreateOptions{}, err
	}
	labels := map[string]string{}
	if err := keyValues(f.labels, labels, "--label"); err != nil {
		return network.CreateOptions{}, err
	}
	ipam := &network.IPAM{Driver: f.driver, Options: map[string]string{translate.OptNetwork: f.bind}}
	v6 := false
	for _, p := range pools {
		ipam.Config = append(ipam.Config, network.IPAMConfig{Subnet: p.Subnet.String(), Gateway: gatewayOf(f.gateways, p)})
		v6 = v6 || p.Subnet.Addr().Is6()
	}
	return network.CreateOptions{Driver: f.driver, IPAM: ipam, Options: opts, Labels: labels, EnableIPv6: &v6}, nil
}

// gatewayOf is the --gateway given for pool p's subnet, else its own.
func gatewayOf(given []string, p translate.Pool) string {
	for _, g := range given {
		if a, err := netip.ParseAddr(g); err == nil && p.Subnet.Contains(a) {
			return a.String()
		}
	}
	return p.Gateway.String()
}

func keyValues(kvs []string, into map[string]string, flag string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%s %q: want KEY=VALUE", flag, kv)
		}
		into[k] = v
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
