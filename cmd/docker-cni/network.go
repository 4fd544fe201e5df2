package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/translate"
)

// networkCmd runs `docker-cni network create`.
func networkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: docker-cni network create NAME --bind CNI_NETWORK [flags]")
	}
	return networkCreate(ctx, args[1:], stdout, stderr)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

type createFlags struct {
	name, bind, confDir, host, driver string
	subnets, gateways, labels, opts   multiFlag
}

func parseCreate(args []string, stderr io.Writer) (createFlags, error) {
	var f createFlags
	fs := newFlagSet("network create", stderr)
	fs.StringVar(&f.bind, "bind", "", "the CNI network (conflist name) to bind to (required)")
	fs.StringVar(&f.confDir, "cni-conf-dir", "/etc/cni/net.d", "where the conflist is looked up, as the daemon does")
	fs.StringVar(&f.host, "docker-host", envOr("DOCKER_HOST", "unix:///var/run/docker.sock"), "the Docker engine to create the network on")
	fs.StringVar(&f.driver, "driver", "cni", "the docker-cni driver name (its socket's base name)")
	fs.Var(&f.subnets, "subnet", "a subnet of the CNI network to use (repeatable; needed for IPAM plugins whose ranges are not in the conflist)")
	fs.Var(&f.gateways, "gateway", "the gateway of a --subnet whose IPAM plugin does not say it (repeatable)")
	fs.Var(&f.labels, "label", "a network label KEY=VALUE (repeatable)")
	fs.Var(&f.opts, "opt", "a driver option KEY=VALUE, as docker network create -o (repeatable)")
	// NAME may come first, as with docker network create.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		f.name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.name == "" && fs.NArg() == 1 {
		f.name = fs.Arg(0)
	} else if fs.NArg() > 0 {
		return f, fmt.Errorf("network create: unexpected arguments %v", fs.Args())
	}
	if f.name == "" || f.bind == "" {
		return f, errors.New("usage: docker-cni network create NAME --bind CNI_NETWORK [flags]")
	}
	return f, nil
}

// networkCreate creates a Docker network bound to a CNI network through the
// Docker API, with the driver, IPAM driver, options, subnets and gateways
// filled in from the conflist (or flannel's subnet file).
func networkCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseCreate(args, stderr)
	if err != nil {
		return err
	}
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

var _ flag.Value = (*multiFlag)(nil)
