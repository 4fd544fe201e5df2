package main

// `docker-cni doctor`: what works for docker-cni on this node, and why not.

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/doctor"
)

func doctorCommand() *cobra.Command {
	s := &doctorSettings{}
	var format, hosts string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check this node for docker-cni: daemon, engines, kernel, firewall, plugins, conflists, networks",
		Long: `Check the node docker-cni runs on and say what works and why not:

  daemon     running? ready? serving Docker's plugin protocol on its socket?
             a socket file left by a daemon that stopped? plugin spec files?
  engine     each engine of --docker-host: does it answer, its version, the
             join mode its containers get (handover on Docker 28+, move
             before), does it find the driver?
  host       network namespaces, ip_forward, the FORWARD policy with
             br_netfilter and DOCKER-USER, the iptables backend against
             dockerd's, the kernel's bridge/veth/macvlan/ipvlan/vxlan drivers
  plugins    each CNI bin dir and each plugin's CNI versions (CNI VERSION)
  conflist   every conflist of the conf dir: bindable or not, how, the exact
             docker-cni network create --bind command, or why it is refused
  network    each docker-cni network: its conflist still there and unchanged,
             its engine, endpoints, leftovers, firewall rules

It runs no container and changes nothing (the only plugin runs are CNI
VERSION). While the daemon runs, its own settings (conf dir, bin dirs,
engines, sockets) are checked, unless a flag says otherwise. It exits 1 when
something blocks docker-cni (a "fail"); "warn" is something that does not
work, like a conflist docker-cni cannot bind, that does not block it.`,
		Example: `  docker-cni doctor
  docker-cni doctor --format json | jq '.Checks[] | select(.Status != "ok")'
  # another conf dir, before pointing the daemon at it
  docker-cni doctor --cni-conf-dir /etc/cni/net.d.new`,
		Args:    noArgs,
		PreRunE: func(*cobra.Command, []string) error { return checkFormat(format) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			s.hosts = strings.Split(hosts, ",")
			r := runDoctor(cmd.Context(), cmd, s)
			out := cmd.OutOrStdout()
			if format == formatJSON {
				if err := printJSON(out, r); err != nil {
					return err
				}
			} else {
				printReport(out, r)
			}
			return r.Err()
		},
	}
	fs := cmd.Flags()
	stateFlags(cmd, &s.stateDir, &s.adminSocket)
	fs.StringVar(&s.socket, "socket", "/run/docker/plugins/cni.sock", "the daemon's plugin socket (default: the running daemon's)")
	fs.StringVar(&s.confDir, "cni-conf-dir", defaultConfDir, "the CNI conf dir whose conflists are checked (default: the running daemon's; $CNI_CONF_DIR)")
	fs.StringVar(&s.binDir, "cni-bin-dir", defaultBinDir, "colon-separated CNI plugin dirs (default: the running daemon's; $CNI_BIN_DIR)")
	fs.StringVar(&hosts, "docker-host", envOr("DOCKER_HOST", defaultDockerHost), "comma-separated engines (default: the running daemon's --docker-host)")
	fs.DurationVar(&s.timeout, "timeout", 5*time.Second, "how long to wait for each engine and plugin")
	formatFlag(cmd, &format)
	cmd.MarkFlagDirname("cni-conf-dir")
	defaultsFromEnv(fs)
	return cmd
}

// doctorReport is the doctor's answer: the settings it checked, and the
// checks.
type doctorReport struct {
	Settings admin.Settings
	doctor.Report
}

func runDoctor(ctx context.Context, cmd *cobra.Command, s *doctorSettings) doctorReport {
	fromDaemon(ctx, cmd, s)
	daemon := probeDaemon(ctx, s)
	engines, owners, answered := probeEngines(ctx, s)
	host := probeHost(ctx)
	plugins := probePlugins(ctx, s)
	nws, networks, err := probeNetworks(ctx, s, owners, answered)
	netChecks := doctor.NetworkChecks(networks, host)
	switch {
	case err != nil && daemon.StateMissing:
		netChecks = []doctor.Check{{Area: doctor.AreaNetwork, Subject: s.stateDir, Status: doctor.Info, Summary: "none: no daemon runs, and it has no state"}}
	case err != nil:
		netChecks = []doctor.Check{{Area: doctor.AreaNetwork, Subject: s.stateDir, Status: doctor.Warn, Summary: "docker-cni's networks cannot be read: " + oneLine(err)}}
	}
	files, dirErr := probeConflists(ctx, s, nws)
	return doctorReport{
		Settings: admin.Settings{Socket: s.socket, CNIConfDir: s.confDir, CNIBinDir: s.binDir, StateDir: s.stateDir, DockerHosts: s.hosts},
		Report: doctor.NewReport(doctor.DaemonChecks(daemon), doctor.EngineChecks(engines), doctor.HostChecks(host),
			doctor.PluginChecks(plugins), doctor.ConflistChecks(s.confDir, files, dirErr, host.Modules), netChecks),
	}
}

// fromDaemon takes the running daemon's settings where no flag was given.
func fromDaemon(ctx context.Context, cmd *cobra.Command, s *doctorSettings) {
	var cfg admin.Settings
	if err := admin.NewClient(s.adminSocket).Get(ctx, "/v1/config", &cfg); err != nil {
		return
	}
	take := func(flag string, into *string, v string) {
		if !cmd.Flags().Changed(flag) && v != "" {
			*into = v
		}
	}
	take("socket", &s.socket, cfg.Socket)
	take("cni-conf-dir", &s.confDir, cfg.CNIConfDir)
	take("cni-bin-dir", &s.binDir, cfg.CNIBinDir)
	take("state-dir", &s.stateDir, cfg.StateDir)
	if !cmd.Flags().Changed("docker-host") && len(cfg.DockerHosts) > 0 {
		s.hosts = cfg.DockerHosts
	}
}

var statusMark = map[doctor.Status]string{doctor.OK: "ok", doctor.Info: "info", doctor.Warn: "WARN", doctor.Fail: "FAIL"}

// printReport prints the checks by area: a line each, their details and
// fix indented below, then the verdict.
func printReport(w io.Writer, r doctorReport) {
	area := ""
	for _, c := range r.Checks {
		if c.Area != area {
			if area != "" {
				fmt.Fprintln(w)
			}
			area = c.Area
			fmt.Fprintln(w, strings.ToUpper(area))
		}
		fmt.Fprintf(w, "  %-4s  %s: %s\n", statusMark[c.Status], c.Subject, c.Summary)
		for _, d := range c.Details {
			fmt.Fprintf(w, "        %s\n", d)
		}
		if c.Fix != "" {
			fmt.Fprintf(w, "        -> %s\n", c.Fix)
		}
	}
	fmt.Fprintln(w)
	switch {
	case r.Failed > 0:
		fmt.Fprintf(w, "%d problem(s) block docker-cni, %d warning(s)\n", r.Failed, r.Warnings)
	case r.Warnings > 0:
		fmt.Fprintf(w, "docker-cni can work here; %d warning(s)\n", r.Warnings)
	default:
		fmt.Fprintln(w, "docker-cni can work here")
	}
}
