package doctor

import (
	"fmt"
	"strings"
)

// PluginFacts are the CNI bin dirs and the plugins in them.
type PluginFacts struct {
	Dirs    []BinDir
	Plugins []Plugin
}

// BinDir is one dir of --cni-bin-dir; Err is why it cannot be listed.
type BinDir struct {
	Path string
	Err  string `json:",omitempty"`
}

// Plugin is one executable of a bin dir, the first of its name (the one
// libcni runs); Versions are the CNI versions it answered to VERSION, Err
// why it did not answer.
type Plugin struct {
	Name, Path string
	Versions   []string `json:",omitempty"`
	Err        string   `json:",omitempty"`
}

// Generated networks run bridge with static IPAM (the address docker-cni
// reserved), and portmap for the containers that publish ports.
var (
	generatedNeeds  = []string{"bridge", "static"}
	publishingNeeds = []string{"portmap"}
)

// PluginChecks: which bin dirs exist, each plugin's CNI versions, and
// whether generated networks and -p can work.
func PluginChecks(f PluginFacts) []Check {
	var out []Check
	var dirs []string
	for _, d := range f.Dirs {
		dirs = append(dirs, d.Path)
		if d.Err != "" {
			out = append(out, check(AreaPlugins, d.Path, Info, "not listed: "+d.Err))
		}
	}
	byName := map[string]Plugin{}
	c := check(AreaPlugins, strings.Join(dirs, ":"), OK, fmt.Sprintf("%d plugins", len(f.Plugins)))
	for _, p := range f.Plugins {
		byName[p.Name] = p
		line := fmt.Sprintf("%s (%s): CNI %s", p.Name, p.Path, strings.Join(p.Versions, ", "))
		if p.Err != "" {
			line = fmt.Sprintf("%s (%s): does not answer CNI VERSION: %s", p.Name, p.Path, p.Err)
		}
		c.Details = append(c.Details, line)
	}
	missing := missingOf(byName, generatedNeeds)
	switch {
	case len(f.Plugins) == 0:
		c.Status, c.Summary = Fail, "no CNI plugin in "+strings.Join(dirs, ":")
		c.Fix = "apt-get install containernetworking-plugins (or give their dir with --cni-bin-dir)"
	case len(missing) > 0:
		c.Status = Fail
		c.Summary += fmt.Sprintf("; no %s: generated networks cannot be created", strings.Join(missing, ", "))
		c.Fix = "apt-get install containernetworking-plugins (or give their dir with --cni-bin-dir)"
	case len(missingOf(byName, publishingNeeds)) > 0:
		c.Status = Warn
		c.Summary += "; no portmap: docker run -p fails on generated networks"
	}
	return append(out, c)
}

func missingOf(have map[string]Plugin, need []string) []string {
	var out []string
	for _, n := range need {
		if p, ok := have[n]; !ok || p.Err != "" {
			out = append(out, n)
		}
	}
	return out
}
