package doctor

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// What the probes read, parsed here: the probes only run commands and read
// files.

var modeRe = regexp.MustCompile(`\((nf_tables|legacy)\)`)

// IptablesMode is the backend `iptables --version` names: nf_tables or
// legacy (iptables before 1.8 names none: legacy); "" for no output.
func IptablesMode(versionOutput string) string {
	if m := modeRe.FindStringSubmatch(versionOutput); m != nil {
		return m[1]
	}
	if strings.HasPrefix(strings.TrimSpace(versionOutput), "iptables v") {
		return "legacy"
	}
	return ""
}

// ForwardPolicy is the policy in the rules of `iptables -S FORWARD`
// ("-P FORWARD DROP"), "" when they have none.
func ForwardPolicy(rules []string) string {
	for _, r := range rules {
		if f := strings.Fields(r); len(f) == 3 && f[0] == "-P" && f[1] == "FORWARD" {
			return f[2]
		}
	}
	return ""
}

// KernelDrivers are the kernel drivers CNI main plugins need, with their
// kernel config option: bridge and veth (bridge, ptp), macvlan, ipvlan,
// vxlan (flannel's default backend).
var KernelDrivers = map[string]string{
	"bridge": "CONFIG_BRIDGE", "veth": "CONFIG_VETH", "macvlan": "CONFIG_MACVLAN",
	"ipvlan": "CONFIG_IPVLAN", "vxlan": "CONFIG_VXLAN",
}

// ModuleState is how the kernel has a driver: "loaded" (/sys/module has
// it), "builtin" or "available" (a module loaded when first used) by the
// kernel's config (/proc/config.gz) or else by modules.builtin and
// modules.dep of /lib/modules/$(uname -r), "missing" when those say
// neither, "unknown" when none of them could be read.
func ModuleState(name string, loaded bool, kconfig, builtin, dep string) string {
	if loaded {
		return "loaded"
	}
	if kconfig != "" {
		switch configValue(kconfig, KernelDrivers[name]) {
		case "y":
			return "builtin"
		case "m":
			return "available"
		}
		return "missing"
	}
	switch {
	case listed(builtin, name):
		return "builtin"
	case listed(dep, name):
		return "available"
	case builtin == "" && dep == "":
		return "unknown"
	}
	return "missing"
}

// KernelConfigValue is option's value in a kernel config ("y", "m", or
// "" when not set).
func KernelConfigValue(kconfig, option string) string { return configValue(kconfig, option) }

func configValue(kconfig, option string) string {
	for _, l := range strings.Split(kconfig, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && k == option {
			return v
		}
	}
	return ""
}

// listed reports whether a modules.builtin or modules.dep list has the
// module name.
func listed(list, name string) bool {
	for _, l := range strings.Split(list, "\n") {
		path, _, _ := strings.Cut(l, ":")
		base := path[strings.LastIndex(path, "/")+1:]
		base, _, _ = strings.Cut(base, ".ko")
		if base != "" && strings.ReplaceAll(base, "-", "_") == name {
			return true
		}
	}
	return false
}

// Listening reports whether /proc/net/unix (its text) has a listening
// socket bound to path: a daemon, or systemd holding it for one.
func Listening(procNetUnix, path string) bool {
	for _, l := range strings.Split(procNetUnix, "\n")[1:] {
		f := strings.Fields(l)
		// Num RefCount Protocol Flags Type St Inode Path; flag 00010000
		// is __SO_ACCEPTCON, a listening socket.
		if len(f) == 8 && f[7] == path && f[3] == "00010000" {
			return true
		}
	}
	return false
}

// SpecAddr is the address a Docker plugin spec file gives: a .spec file
// holds a URL, a .json file an object with Addr.
func SpecAddr(path string, content []byte) (string, error) {
	addr := strings.TrimSpace(string(content))
	if strings.HasSuffix(path, ".json") {
		var spec struct{ Addr string }
		if err := json.Unmarshal(content, &spec); err != nil {
			return "", fmt.Errorf("decode %s: %w", path, err)
		}
		addr = spec.Addr
	}
	if addr == "" {
		return "", fmt.Errorf("%s gives no address", path)
	}
	return addr, nil
}
