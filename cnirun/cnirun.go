// Package cnirun runs CNI plugins: whole chains through libcni, and IPAM
// plugins on their own to reserve and release single addresses. It is the
// only package that executes plugins. It keeps its own cache dir, so that
// libcni's GC run by another runtime never sees docker-cni's attachments.
package cnirun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/docker-cni/docker-cni/observe"
)

// Runner is what the drivers need of CNI.
type Runner interface {
	// Add runs ADD over a conflist.
	Add(ctx context.Context, list []byte, rt *libcni.RuntimeConf) (*current.Result, error)
	// Del runs DEL over a conflist.
	Del(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error
	// Validate checks that every plugin of a conflist, and every IPAM
	// plugin its plugins delegate to, exists and supports the list's CNI
	// version; a version a plugin does not support is a *VersionError.
	Validate(ctx context.Context, list []byte) error
	// PluginAdd runs one plugin's ADD on its own: an IPAM plugin reserving
	// an address, or portmap publishing ports for an attachment.
	PluginAdd(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) (*current.Result, error)
	// PluginDel runs one plugin's DEL to undo PluginAdd.
	PluginDel(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) error
	// Status runs STATUS over a conflist (1.1.0 and later).
	Status(ctx context.Context, list []byte) error
	// Check runs CHECK over a conflist for an attachment (0.4.0 and later).
	Check(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error
	// GC runs GC over a conflist with the attachments that are still valid
	// (1.1.0 and later).
	GC(ctx context.Context, list []byte, valid []types.GCAttachment) error
}

// PluginArgs are the CNI_* arguments of a single plugin run.
type PluginArgs struct {
	ContainerID string
	IfName      string
	// NetNS is passed as CNI_NETNS: plugins require one for ADD even when,
	// like host-local, they do not use it.
	NetNS string
	// Args are passed as CNI_ARGS (calico-ipam reads a requested address
	// there, as IP).
	Args [][2]string
}

// DefaultTimeout bounds one plugin run unless told otherwise; Docker gives
// a plugin call 30 s.
const DefaultTimeout = 20 * time.Second

// LibCNI runs plugins found in BinDirs with libcni.
type LibCNI struct {
	BinDirs []string
	// Timeout bounds each plugin run (a whole chain for Add and Del).
	Timeout time.Duration
	// Observer, if set, is told of every plugin exec; Log, if set, logs
	// each at debug level. Set both before the first run.
	Observer Observer
	Log      *slog.Logger
	cni      *libcni.CNIConfig
	exec     invoke.Exec
}

// Observer is told of every plugin exec (each plugin of a chain, each
// VERSION query); package metrics implements it.
type Observer interface {
	PluginExec(plugin, command string, took time.Duration, err error)
}

var _ Runner = (*LibCNI)(nil)

// New returns a Runner using the plugins in binDirs and caching attachments
// in cacheDir.
func New(binDirs []string, cacheDir string) *LibCNI {
	l := &LibCNI{BinDirs: binDirs, Timeout: DefaultTimeout}
	l.exec = timedExec{Exec: &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: nil}}, l: l}
	l.cni = libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, l.exec)
	return l
}

// timedExec times every plugin exec: into the request's observe.ExecClock
// (the context carries it down through libcni), to the Observer, and to
// the debug log.
type timedExec struct {
	invoke.Exec
	l *LibCNI
}

func (e timedExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	start := time.Now()
	out, err := e.Exec.ExecPlugin(ctx, pluginPath, stdin, environ)
	took := time.Since(start)
	observe.AddExec(ctx, took)
	plugin, command := filepath.Base(pluginPath), envValue(environ, "CNI_COMMAND")
	if e.l.Observer != nil {
		e.l.Observer.PluginExec(plugin, command, took, err)
	}
	if e.l.Log != nil {
		attrs := []any{"cni_plugin", plugin, "command", command,
			"cni_container_id", envValue(environ, "CNI_CONTAINERID"), "ifname", envValue(environ, "CNI_IFNAME"), "took", took}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		e.l.Log.DebugContext(ctx, "cni plugin ran", attrs...)
	}
	return out, err
}

// envValue is the value of key in an environment list, "" when unset.
func envValue(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(environ[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// deadline bounds one run; a plugin that outlives it is killed, and the
// error names the plugin and the timeout.
func (l *LibCNI) deadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.Timeout)
}

// timedOut says so when a run failed because it outlived its deadline.
func (l *LibCNI) timedOut(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s (--cni-timeout), killed: %w", l.Timeout, err)
	}
	return err
}

func (l *LibCNI) Add(ctx context.Context, list []byte, rt *libcni.RuntimeConf) (*current.Result, error) {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return nil, err
	}
	res, err := l.cni.AddNetworkList(ctx, nl, rt)
	if err != nil {
		return nil, l.timedOut(ctx, err)
	}
	return current.NewResultFromResult(res)
}

func (l *LibCNI) Del(ctx context.Context, list []byte, rt *libcni.RuntimeConf) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return err
	}
	return l.timedOut(ctx, l.cni.DelNetworkList(ctx, nl, rt))
}

func (l *LibCNI) Validate(ctx context.Context, list []byte) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	nl, err := libcni.ConfListFromBytes(list)
	if err != nil {
		return err
	}
	for _, typ := range pluginTypes(nl) {
		path, err := l.findPlugin(typ)
		if err != nil {
			return err
		}
		info, err := invoke.GetVersionInfo(ctx, path, l.exec)
		if err != nil {
			return fmt.Errorf("plugin %s (%s): ask its CNI versions: %w", typ, path, err)
		}
		if err := checkVersion(typ, path, nl.CNIVersion, info.SupportedVersions()); err != nil {
			return err
		}
	}
	return nil
}

// PluginVersions asks the plugin at path which CNI versions it supports
// (CNI VERSION), within the runner's deadline.
func (l *LibCNI) PluginVersions(ctx context.Context, path string) ([]string, error) {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	info, err := invoke.GetVersionInfo(ctx, path, l.exec)
	if err != nil {
		return nil, l.timedOut(ctx, err)
	}
	return info.SupportedVersions(), nil
}

// VersionError is a plugin that does not support the CNI version of the
// conflist it would run in.
type VersionError struct {
	Plugin, Path string
	// Version is the conflist's cniVersion; Supported what the plugin
	// answered to VERSION.
	Version   string
	Supported []string
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("plugin %s (%s) does not support CNI version %s (it supports %s)",
		e.Plugin, e.Path, e.Version, strings.Join(e.Supported, ", "))
}

// pluginTypes lists the plugins a conflist runs: its plugins in order, then
// the IPAM plugins they delegate to, each once.
func pluginTypes(nl *libcni.NetworkConfigList) []string {
	var out []string
	for _, p := range nl.Plugins {
		if !slices.Contains(out, p.Network.Type) {
			out = append(out, p.Network.Type)
		}
	}
	for _, p := range nl.Plugins {
		if t := p.Network.IPAM.Type; t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// checkVersion refuses a conflist version the plugin does not list. An
// empty version is 0.1.0, as libcni reads it.
func checkVersion(plugin, path, version string, supported []string) error {
	if version == "" {
		version = "0.1.0"
	}
	if slices.Contains(supported, version) {
		return nil
	}
	return &VersionError{Plugin: plugin, Path: path, Version: version, Supported: supported}
}

func (l *LibCNI) pluginArgs(cmd string, a PluginArgs) *invoke.Args {
	return &invoke.Args{
		Command:     cmd,
		ContainerID: a.ContainerID,
		NetNS:       a.NetNS,
		IfName:      a.IfName,
		PluginArgs:  a.Args,
		Path:        strings.Join(l.BinDirs, ":"),
	}
}

func (l *LibCNI) findPlugin(pluginType string) (string, error) {
	p, err := invoke.FindInPath(pluginType, l.BinDirs)
	if err != nil {
		return "", fmt.Errorf("plugin %q not found in %s", pluginType, strings.Join(l.BinDirs, ":"))
	}
	return p, nil
}

func (l *LibCNI) PluginAdd(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) (*current.Result, error) {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	path, err := l.findPlugin(pluginType)
	if err != nil {
		return nil, err
	}
	res, err := invoke.ExecPluginWithResult(ctx, path, netconf, l.pluginArgs("ADD", a), l.exec)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", pluginType, l.timedOut(ctx, err))
	}
	return current.NewResultFromResult(res)
}

func (l *LibCNI) PluginDel(ctx context.Context, pluginType string, netconf []byte, a PluginArgs) error {
	ctx, cancel := l.deadline(ctx)
	defer cancel()
	path, err := l.findPlugin(pluginType)
	if err != nil {
		return err
	}
	if err := invoke.ExecPluginWithoutResult(ctx, path, netconf, l.pluginArgs("DEL", a), l.exec); err != nil {
		return fmt.Errorf("plugin %s: %w", pluginType, l.timedOut(ctx, err))
	}
	return nil
}
