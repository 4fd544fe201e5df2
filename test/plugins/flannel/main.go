// Command flannel is a test stand-in for flannel's CNI plugin
// (github.com/flannel-io/cni-plugin). It exists because that module is not
// available from the Go module proxy here, and docker-cni must be tested
// against the conflist k3s installs:
//
//	{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}}, then portmap
//
// It is our own code, written from the behaviour established from the
// plugin's README, a reading of its source and hand checks; none of its code
// is copied. Like the real plugin it:
//   - reads its conf: name, cniVersion, subnetFile (default
//     /run/flannel/subnet.env), dataDir (default /var/lib/cni/flannel),
//     delegate, ipam, runtimeConfig;
//   - reads the subnet file (KEY=VALUE lines): FLANNEL_NETWORK and
//     FLANNEL_IPV6_NETWORK (comma-separated, duplicates dropped),
//     FLANNEL_SUBNET, FLANNEL_IPV6_SUBNET, FLANNEL_MTU, FLANNEL_IPMASQ; a
//     network, a subnet, the MTU and IPMASQ must all be there;
//   - builds the delegate conf from "delegate": rejects a non-string type and
//     any name or ipam key; copies runtimeConfig in; sets name; defaults type
//     to bridge, ipMasq to !FLANNEL_IPMASQ, mtu to FLANNEL_MTU and, for bridge,
//     isGateway to true; overwrites cniVersion when the conf has one; builds
//     ipam from the conf's ipam section (any type, default host-local, other
//     keys kept) with ranges set to the subnets and the networks appended to
//     its routes;
//   - on ADD saves that conf to dataDir/<containerID> (kept if the delegate
//     fails), runs the delegate and prints its result;
//   - on DEL runs the delegate's DEL with the saved conf and then removes the
//     file even if the delegate failed; a missing file is success; an
//     unparsable file is left in place and DEL succeeds;
//   - accepts CHECK (config 0.4.0 and later), GC and STATUS and does nothing
//     for them; reports CNI versions 0.1.0 to 1.1.0.
//
// It leaves out the Windows delegates (win-l2bridge, win-overlay) and the
// debug output the real plugin prints on stderr.
//
// Checked by hand, side by side, against the real plugin built from
// flannel-io/cni-plugin commit 092e6d26e43c0c09c5bd4e8c49231d69cc2673be on
// 2026-11-30, delegating to Debian's reference plugins 1.1.1: same saved
// delegate conf (byte for byte), same ADD result, same link, addresses and
// routes in the netns, same DEL, CHECK, STATUS, GC and VERSION behaviour, and
// the same error cases with the same exit codes; only the error wording
// differs. conf_test.go holds the confs the real plugin saved.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

const (
	defaultSubnetFile = "/run/flannel/subnet.env"
	defaultDataDir    = "/var/lib/cni/flannel"
)

// netConf is the flannel plugin's own conf. IPAM shadows the embedded typed
// one so that every key of the section reaches the delegate.
type netConf struct {
	types.NetConf
	IPAM          map[string]any `json:"ipam,omitempty"`
	SubnetFile    string         `json:"subnetFile"`
	DataDir       string         `json:"dataDir"`
	Delegate      map[string]any `json:"delegate"`
	RuntimeConfig map[string]any `json:"runtimeConfig,omitempty"`
}

func main() {
	skel.PluginMainFuncs(skel.CNIFuncs{Add: cmdAdd, Del: cmdDel, Check: cmdCheck},
		version.All, "CNI plugin flannel (docker-cni test stand-in)")
}

func loadConf(stdin []byte) (*netConf, error) {
	n := &netConf{SubnetFile: defaultSubnetFile, DataDir: defaultDataDir}
	if err := json.Unmarshal(stdin, n); err != nil {
		return nil, fmt.Errorf("parse flannel conf: %w", err)
	}
	return n, nil
}

func cmdAdd(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	f, err := os.Open(n.SubnetFile)
	if err != nil {
		return fmt.Errorf("read flannel subnet file: %w", err)
	}
	env, err := parseSubnetEnv(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("read flannel subnet file %s: %w", n.SubnetFile, err)
	}
	conf, err := delegateConf(n, env)
	if err != nil {
		return err
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return fmt.Errorf("encode delegate conf: %w", err)
	}
	// Saved before the delegate runs: DEL after a failed ADD needs it.
	if err := saveConf(filepath.Join(n.DataDir, args.ContainerID), data); err != nil {
		return err
	}
	delegate := conf["type"].(string)
	result, err := invoke.DelegateAdd(context.Background(), delegate, data, nil)
	if err != nil {
		return fmt.Errorf("delegate ADD %s: %w", delegate, err)
	}
	return result.Print()
}

func cmdDel(args *skel.CmdArgs) error {
	n, err := loadConf(args.StdinData)
	if err != nil {
		return err
	}
	path := filepath.Join(n.DataDir, args.ContainerID)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // never added, or already deleted
	}
	if err != nil {
		return fmt.Errorf("read saved delegate conf: %w", err)
	}
	var saved types.NetConf
	if err := json.Unmarshal(data, &saved); err != nil {
		// The real plugin gives up quietly and keeps the file.
		fmt.Fprintf(os.Stderr, "parse saved delegate conf %s: %v\n", path, err)
		return nil
	}
	// The real plugin removes the file whatever the delegate returns.
	defer os.Remove(path)
	if err := invoke.DelegateDel(context.Background(), saved.Type, data, nil); err != nil {
		return fmt.Errorf("delegate DEL %s: %w", saved.Type, err)
	}
	return nil
}

// cmdCheck does nothing, as in the real plugin.
func cmdCheck(*skel.CmdArgs) error { return nil }

// saveConf writes data to path through a synced temp file and a rename.
func saveConf(path string, data []byte) (retErr error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("save delegate conf: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("save delegate conf: %w", err)
	}
	defer func() {
		if retErr != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("save delegate conf %s: %w", path, err)
	}
	return nil
}
