package driver

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/state"
)

// hostIfPrefix starts the names of the interfaces docker-cni keeps in the
// host while libnetwork takes them over (translate.HostIfName).
const hostIfPrefix = "dcni"

// Sweep removes what no record knows: this instance's host interfaces
// (dcni*, marked with its alias: another instance's are not its to touch)
// and scratch netns (in its own run dir) whose endpoint is gone, as a crash
// can leave them. Everything an endpoint record names is kept: the links
// and netns are listed first and the records read after, and a Join records
// its endpoint before it makes either, so one in flight is always known.
func (d *Driver) Sweep(ctx context.Context) error {
	links, err := d.ns.HostLinks(hostIfPrefix, d.linkAlias())
	if err != nil {
		return err
	}
	names, err := d.ns.Entries(d.cfg.ScratchDir)
	if err != nil {
		return err
	}
	known, err := d.knownEndpoints()
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range links {
		if !known(strings.TrimPrefix(l, hostIfPrefix)) {
			d.log.WarnContext(ctx, "removing an interface no endpoint knows", "link", l)
			errs = append(errs, d.swept(observe.LinkSwept, d.ns.DeleteHostLink(l)))
		}
	}
	for _, n := range names {
		if n != ScratchIPAM && !known(n) {
			d.log.WarnContext(ctx, "removing a scratch netns no endpoint knows", "netns", n)
			errs = append(errs, d.swept(observe.NetNSSwept, d.ns.Remove(filepath.Join(d.cfg.ScratchDir, n))))
		}
	}
	return errors.Join(errs...)
}

// swept counts a sweep that succeeded and returns its error.
func (d *Driver) swept(kind string, err error) error {
	if err == nil {
		d.count.Add(kind)
	}
	return err
}

// ScratchIPAM is the daemon's own netns in the scratch dir, handed to IPAM
// plugins; Sweep keeps it.
const ScratchIPAM = "ipam"

// knownEndpoints returns a test of whether a short endpoint ID (a prefix of
// one, as names made from IDs hold) belongs to an endpoint record.
func (d *Driver) knownEndpoints() (func(short string) bool, error) {
	var ids []string
	err := d.store.View(func(tx *state.Tx) error {
		eps, err := tx.Endpoints()
		for _, ep := range eps {
			ids = append(ids, ep.ID)
		}
		return err
	})
	return func(short string) bool {
		for _, id := range ids {
			if short != "" && strings.HasPrefix(id, short) {
				return true
			}
		}
		return false
	}, err
}
