package doctor

import (
	"fmt"
	"strings"
)

// ConflistFacts are what docker-cni's own binding rules (translate's
// pools, the driver's chain validation) made of one file of the conf dir.
type ConflistFacts struct {
	Path, Name, CNIVersion string
	Plugins                []string `json:",omitempty"`
	// IPAMType is the main plugin's IPAM ("host-local" for flannel's,
	// which delegates with host-local); SubnetFile flannel's subnet file.
	IPAMType   string `json:",omitempty"`
	SubnetFile string `json:",omitempty"`
	// LoadErr: the file cannot be read as a network configuration.
	LoadErr string `json:",omitempty"`
	// ShadowedBy is the earlier file of the same name, which kubelet's
	// runtimes and docker-cni take instead.
	ShadowedBy string `json:",omitempty"`
	// BindErr is why a binding is refused ("" it is not); NeedsSubnet
	// says it is refused only for want of --subnet.
	BindErr     string `json:",omitempty"`
	NeedsSubnet bool   `json:",omitempty"`
	// Pools are the Docker pools a binding gets, "subnet gateway G".
	Pools []string `json:",omitempty"`
	// ChainErr is why the joins' chain cannot run (a plugin missing or
	// without the conflist's CNI version).
	ChainErr string `json:",omitempty"`
	// BoundBy are the docker-cni networks bound to it.
	BoundBy []string `json:",omitempty"`
}

// ConflistChecks: for every conflist of the conf dir, whether a Docker
// network can be bound to it, how, and the command, or why not.
// modules are the host's kernel drivers (HostFacts.Modules): a chain whose
// main plugin makes a link the kernel cannot is refused too.
func ConflistChecks(confDir string, files []ConflistFacts, dirErr string, modules map[string]string) []Check {
	if dirErr != "" {
		return []Check{{Area: AreaConflist, Subject: confDir, Status: Warn, Summary: dirErr}}
	}
	if len(files) == 0 {
		return []Check{check(AreaConflist, confDir, Info, "no conflist: only generated networks (docker network create -d cni --subnet ...)")}
	}
	var out []Check
	for _, f := range files {
		out = append(out, conflistCheck(f, modules))
	}
	return out
}

func conflistCheck(f ConflistFacts, modules map[string]string) Check {
	c := check(AreaConflist, f.Path, OK, "")
	if len(f.BoundBy) > 0 {
		c.Details = append(c.Details, "bound by docker-cni network(s) "+strings.Join(f.BoundBy, ", ")+": their new containers join with this file as it is now")
	}
	refused := func(why string) Check {
		c.Status, c.Summary = Warn, fmt.Sprintf("%q cannot be bound: %s", f.Name, why)
		if len(f.BoundBy) > 0 {
			c.Status = Fail
		}
		return c
	}
	switch {
	case f.LoadErr != "":
		c.Status, c.Summary = Warn, "not a network configuration kubelet's runtimes or docker-cni can read: "+f.LoadErr
		return c
	case f.ShadowedBy != "":
		c.Status, c.Summary = Info, fmt.Sprintf("%q is also the name of %s, which comes first: runtimes and docker-cni use that one", f.Name, f.ShadowedBy)
		return c
	case f.BindErr != "" && !f.NeedsSubnet:
		return refused(f.BindErr)
	case f.ChainErr != "":
		if f.NeedsSubnet {
			c.Details = append(c.Details, "IPAM plugin "+f.IPAMType+" does not say its ranges in its configuration: a binding would need --subnet too")
		}
		return refused(f.ChainErr)
	}
	for _, p := range f.Plugins {
		if _, link := KernelDrivers[p]; link && modules[p] == "missing" {
			return refused(fmt.Sprintf("its plugin %s makes %s links, and this kernel has no %s driver", p, p, p))
		}
	}
	c.Details = append(c.Details, fmt.Sprintf("CNI %s, plugins %s", f.CNIVersion, strings.Join(f.Plugins, ", ")))
	cmd := fmt.Sprintf("docker-cni network create %s --bind %s", f.Name, f.Name)
	if f.NeedsSubnet {
		c.Status = Info
		c.Summary = fmt.Sprintf("%q is bindable with --subnet: IPAM plugin %s does not say its ranges in its configuration", f.Name, f.IPAMType)
		c.Details = append(c.Details, f.BindErr)
		c.Fix = cmd + " --subnet <the subnet " + f.IPAMType + " allocates from>"
		return c
	}
	c.Summary = fmt.Sprintf("%q is bindable: %s over %s", f.Name, how(f), strings.Join(f.Pools, ", "))
	c.Fix = cmd
	return c
}

// how says where a binding's addresses come from.
func how(f ConflistFacts) string {
	if f.SubnetFile != "" {
		return "host-local (flannel's delegate) on the lease in " + f.SubnetFile
	}
	return f.IPAMType
}
