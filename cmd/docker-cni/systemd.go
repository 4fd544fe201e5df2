package main

// How the daemon runs as a service: under systemd (a listening socket
// handed over by socket activation, readiness told with sd_notify) and as a
// Docker managed plugin or from /etc/default/docker-cni (flag defaults
// taken from the environment). The protocols are go-systemd's; this file
// only picks the socket and names what went wrong.

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	sd "github.com/coreos/go-systemd/v22/daemon"
	"github.com/spf13/pflag"
)

// pluginListener returns the listener of the plugin socket at path: the one
// systemd (or systemd-socket-activate) passed when the daemon was started by
// socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES), otherwise a
// socket of its own. The LISTEN_* variables are unset either way, so CNI
// plugins never see them. A passed socket must be bound to path (--socket):
// Docker names the driver after that path.
func pluginListener(path string) (l net.Listener, inherited bool, err error) {
	files := activation.Files(true)
	if len(files) == 0 {
		l, err := listenUnix(path, 0o660)
		return l, false, err
	}
	var others []string
	for _, f := range files {
		fl, ferr := net.FileListener(f)
		f.Close()
		switch {
		case ferr != nil:
			others = append(others, fmt.Sprintf("%s (not a listening socket: %v)", f.Name(), ferr))
		case l == nil && sameSocket(fl.Addr().String(), path):
			l = fl
		default:
			others = append(others, fmt.Sprintf("%s (%s)", f.Name(), fl.Addr()))
			fl.Close()
		}
	}
	if l == nil {
		return nil, false, fmt.Errorf("socket activation passed %s, none of them bound to %s (--socket; the socket unit's ListenStream= must name the same path)",
			strings.Join(others, ", "), path)
	}
	return l, true, nil
}

// sameSocket reports whether the socket bound at addr is the file at path.
func sameSocket(addr, path string) bool {
	if addr == path {
		return true
	}
	a, aerr := os.Stat(addr)
	p, perr := os.Stat(path)
	return aerr == nil && perr == nil && os.SameFile(a, p)
}

// The states the daemon tells systemd.
const (
	sdReady    = sd.SdNotifyReady    // serving the plugin socket
	sdStopping = sd.SdNotifyStopping // shutting down
)

// notify tells systemd the daemon's state when it runs as a Type=notify
// service (NOTIFY_SOCKET set); elsewhere it does nothing.
func notify(log *slog.Logger, state string) {
	sent, err := sd.SdNotify(false, state)
	switch {
	case err != nil:
		log.Warn("could not notify systemd", "state", state, "notify_socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	case sent:
		log.Debug("notified systemd", "state", state)
	}
}

// envDefaults are the serve flags whose defaults environment variables
// set: `docker plugin set docker-cni LOG_LEVEL=debug` for the managed
// plugin, /etc/default/docker-cni for the service. A flag given on the
// command line still wins.
var envDefaults = []struct{ flag, env string }{
	{"cni-conf-dir", "CNI_CONF_DIR"},
	{"cni-bin-dir", "CNI_BIN_DIR"},
	{"log-level", "LOG_LEVEL"},
}

// defaultsFromEnv sets the defaults of envDefaults from the environment,
// before fs parses the command line.
func defaultsFromEnv(fs *pflag.FlagSet) error {
	var errs []error
	for _, d := range envDefaults {
		v := os.Getenv(d.env)
		f := fs.Lookup(d.flag)
		if v == "" || f == nil {
			continue
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("$%s (the default of --%s): %w", d.env, d.flag, err))
			continue
		}
		f.DefValue = v
	}
	return errors.Join(errs...)
}
