package doctor

import (
	"fmt"
	"slices"
)

// DaemonFacts are what the daemon's sockets and state said.
type DaemonFacts struct {
	AdminSocket, PluginSocket, StateDir string
	// Running: the admin API answered; AdminErr says why not otherwise.
	Running  bool
	AdminErr string
	Version  string
	// ReadyErr is /readyz's complaint ("" ready).
	ReadyErr string
	// Implements is what Plugin.Activate on the plugin socket answered;
	// PluginErr why it did not (asked only while the daemon runs: a
	// socket-activated one would start).
	Implements []string
	PluginErr  string
	// SocketExists: something listens on the plugin socket (systemd may
	// hold it for a daemon not started yet). SocketStale: a socket file
	// is there, but nothing listens on it.
	SocketExists, SocketStale bool
	// SpecFiles are Docker's plugin spec files for the driver's name
	// (/etc/docker/plugins, /usr/lib/docker/plugins), with the address
	// each gives.
	SpecFiles []SpecFile
	// StateErr is why the state database could not be read ("" read);
	// StateMissing says there is none (docker-cni never ran with it).
	StateErr     string
	StateMissing bool
}

// DaemonChecks: is the daemon running, ready, serving Docker's plugin
// protocol as both drivers, with a readable state?
func DaemonChecks(f DaemonFacts) []Check {
	if !f.Running {
		c := check(AreaDaemon, f.AdminSocket, Fail, "no docker-cni daemon answers: "+f.AdminErr)
		c.Fix = "start it: systemctl enable --now docker-cni.socket docker-cni.service (or make run); its log says why it stopped (journalctl -u docker-cni)"
		if f.SocketExists {
			c.Status = Warn
			c.Summary = "nothing answers on the admin socket, but something listens on the plugin socket " + f.PluginSocket +
				": systemd holding it for socket activation (docker-cni starts at Docker's first call), or a docker-cni with another --run-dir"
			c.Fix = "for the latter, give its admin socket: --admin-socket <run-dir>/admin.sock"
		}
		out := []Check{c}
		if f.SocketStale {
			out = append(out, staleSocket(f.PluginSocket))
		}
		switch {
		case f.StateMissing:
			out = append(out, check(AreaDaemon, f.StateDir, Info, "no state database: docker-cni has not run with this --state-dir"))
		case f.StateErr != "":
			out = append(out, check(AreaDaemon, f.StateDir, Warn, "state database: "+f.StateErr))
		}
		return append(out, specChecks(f)...)
	}
	c := check(AreaDaemon, f.AdminSocket, OK, fmt.Sprintf("running docker-cni %s, ready", f.Version))
	if f.ReadyErr != "" {
		c.Status, c.Summary = Fail, fmt.Sprintf("running docker-cni %s, not ready: %s", f.Version, f.ReadyErr)
	}
	p := check(AreaDaemon, f.PluginSocket, OK, fmt.Sprintf("serves Docker's plugin protocol: %v", f.Implements))
	switch {
	case f.PluginErr != "":
		p.Status, p.Summary = Fail, "Docker's plugin protocol: "+f.PluginErr
		p.Fix = "the daemon's --socket must be where Docker looks: /run/docker/plugins/<driver>.sock"
	case !slices.Contains(f.Implements, "NetworkDriver") || !slices.Contains(f.Implements, "IpamDriver"):
		p.Status, p.Summary = Fail, fmt.Sprintf("Plugin.Activate answers %v, not NetworkDriver and IpamDriver: another plugin serves this socket", f.Implements)
	}
	return append([]Check{c, p}, specChecks(f)...)
}

// SpecFile is one of Docker's plugin spec files: Docker reads the
// plugin's address from it (a unix:// or tcp:// URL).
type SpecFile struct {
	Path, Addr string
	// Err is why it could not be read.
	Err string
}

// staleSocket: Docker finds the driver by the file and every call to it
// fails until a daemon listens there again.
func staleSocket(path string) Check {
	c := check(AreaDaemon, path, Fail, "a socket file is left at "+path+" but nothing listens on it (a docker-cni that stopped, or was killed, left it): "+
		"Docker finds the driver there and each of its calls fails with \"connection refused\"")
	c.Fix = "start docker-cni again (it replaces the file); if it is gone for good, rm " + path
	return c
}

// specChecks: Docker reads a spec file only when the driver has no
// socket in /run/docker/plugins; one that gives another address than
// docker-cni's socket sends Docker elsewhere when the socket is missing.
func specChecks(f DaemonFacts) []Check {
	var out []Check
	for _, sf := range f.SpecFiles {
		switch want := "unix://" + f.PluginSocket; {
		case sf.Err != "":
			out = append(out, check(AreaDaemon, sf.Path, Warn, "plugin spec file: "+sf.Err))
		case sf.Addr == want:
			out = append(out, check(AreaDaemon, sf.Path, OK, "plugin spec file gives docker-cni's socket "+f.PluginSocket))
		default:
			c := check(AreaDaemon, sf.Path, Warn, fmt.Sprintf("plugin spec file gives %s, not docker-cni's socket %s: "+
				"Docker reads it only while the socket is missing, then sends the driver's calls there", sf.Addr, f.PluginSocket))
			c.Fix = "remove it, or make it say " + want
			out = append(out, c)
		}
	}
	return out
}
