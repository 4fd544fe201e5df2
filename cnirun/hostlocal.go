package cnirun

import (
	"context"
	"errors"
	"fmt"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/allocator"
	"github.com/containernetworking/plugins/plugins/ipam/host-local/backend/disk"
)

// HostLocal runs the host-local IPAM plugin in process, through the
// reference plugins' own host-local packages (the same allocator, the same
// on-disk store and the same file lock as the plugin binary, so the two
// share a network's store safely), and every other plugin through Exec.
// Reserving and releasing Docker's addresses then costs no exec.
type HostLocal struct {
	Exec *LibCNI
}

// PluginAdd reserves as host-local's ADD does, or runs the plugin.
func (h HostLocal) PluginAdd(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) (*current.Result, error) {
	if pluginType != "host-local" {
		return h.Exec.PluginAdd(ctx, pluginType, netconf, a)
	}
	res, err := hostLocalAdd(netconf, a)
	if err != nil {
		return nil, fmt.Errorf("plugin host-local: %w", err)
	}
	return res, nil
}

// PluginDel releases as host-local's DEL does, or runs the plugin.
func (h HostLocal) PluginDel(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) error {
	if pluginType != "host-local" {
		return h.Exec.PluginDel(ctx, pluginType, netconf, a)
	}
	if err := hostLocalDel(netconf, a); err != nil {
		return fmt.Errorf("plugin host-local: %w", err)
	}
	return nil
}

// hostLocalAdd is host-local's ADD: one address per range set, the
// requested ones (args.cni.ips, runtimeConfig.ips) where asked, all
// released again if any fails.
func hostLocalAdd(netconf []byte, a PluginArgs) (*current.Result, error) {
	conf, _, err := allocator.LoadIPAMConfig(netconf, "")
	if err != nil {
		return nil, err
	}
	store, err := disk.New(conf.Name, conf.DataDir)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	requested := map[string]net.IP{}
	for _, ip := range conf.IPArgs {
		requested[ip.String()] = ip
	}
	res := &current.Result{CNIVersion: current.ImplementedSpecVersion, Routes: conf.Routes}
	var done []*allocator.IPAllocator
	release := func() {
		for _, al := range done {
			al.Release(a.ContainerID, a.IfName)
		}
	}
	for i := range conf.Ranges {
		al := allocator.NewIPAllocator(&conf.Ranges[i], store, i)
		ipc, err := al.Get(a.ContainerID, a.IfName, takeRequested(requested, &conf.Ranges[i]))
		if err != nil {
			release()
			return nil, fmt.Errorf("failed to allocate for range %d: %w", i, err)
		}
		done = append(done, al)
		res.IPs = append(res.IPs, ipc)
	}
	if len(requested) > 0 {
		release()
		return nil, fmt.Errorf("failed to allocate all requested IPs: %v", requested)
	}
	return res, nil
}

// takeRequested removes and returns the requested address in a range set.
func takeRequested(requested map[string]net.IP, rs *allocator.RangeSet) net.IP {
	for k, ip := range requested {
		if rs.Contains(ip) {
			delete(requested, k)
			return ip
		}
	}
	return nil
}

// hostLocalDel is host-local's DEL: every range releases the owner's
// address.
func hostLocalDel(netconf []byte, a PluginArgs) error {
	conf, _, err := allocator.LoadIPAMConfig(netconf, "")
	if err != nil {
		return err
	}
	store, err := disk.New(conf.Name, conf.DataDir)
	if err != nil {
		return err
	}
	defer store.Close()
	var errs []error
	for i := range conf.Ranges {
		errs = append(errs, allocator.NewIPAllocator(&conf.Ranges[i], store, i).Release(a.ContainerID, a.IfName))
	}
	return errors.Join(errs...)
}
