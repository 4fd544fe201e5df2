package driver

import (
	"bytes"
	"context"
	"fmt"

	"github.com/docker-cni/docker-cni/cniconf"
	"github.com/docker-cni/docker-cni/state"
	"github.com/docker-cni/docker-cni/translate"
)

// refreshBinding makes new joins of a bound network use its conflist as it
// is now in the conf dir. Joined endpoints keep the list they were added
// with (their DEL needs it). A conflist that vanished, no longer parses, or
// declares a version other than the network's -o cni.version (which docker
// network inspect shows) leaves the network on its last good copy; the user
// is told in the log.
func (d *Driver) refreshBinding(ctx context.Context, nw *state.Network) {
	if !nw.Bound {
		return
	}
	log := d.log.With("network", translate.ShortID(nw.ID), "cni_network", nw.CNINetwork)
	f, err := d.conf.Find(nw.CNINetwork)
	if err != nil {
		log.WarnContext(ctx, "bound conflist is gone from the conf dir; joining with the copy taken when the network was made", "err", err)
		return
	}
	if bytes.Equal(f.Bytes, nw.Conflist) {
		return
	}
	pl, err := cniconf.Parse(f.Bytes)
	if err == nil {
		_, err = pl.IPAM()
	}
	if err == nil && nw.VersionOption != "" && pl.CNIVersion != nw.VersionOption {
		err = fmt.Errorf("it declares cniVersion %s, the network was created with -o %s=%s", pl.CNIVersion, translate.OptVersion, nw.VersionOption)
	}
	if err != nil {
		log.WarnContext(ctx, "bound conflist changed but is not usable; joining with the previous copy", "file", f.Path, "err", err)
		return
	}
	log.InfoContext(ctx, "bound conflist changed; new joins use it, joined endpoints keep theirs", "file", f.Path)
	nw.Conflist, nw.ConfFile, nw.CNIVersion = f.Bytes, f.Path, pl.CNIVersion
	if err := d.saveNetwork(nw); err != nil {
		log.ErrorContext(ctx, "save refreshed conflist", "err", err)
	}
}
