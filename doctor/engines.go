package doctor

import (
	"fmt"
	"strconv"
	"strings"
)

// EngineFacts are what one engine of --docker-host said.
type EngineFacts struct {
	Host string
	// Err is why the engine did not answer ("" it did).
	Err                 string
	Version, APIVersion string
	// Driver is the driver name docker-cni serves (its socket's base
	// name); DriverSocket the socket the engine finds it by, and
	// SocketExists whether it is there.
	Driver, DriverSocket string
	SocketExists         bool
	// ManagedPlugins are the engine's enabled managed plugins that are
	// network drivers (docker-cni as a managed plugin is one).
	ManagedPlugins []string
	// Networks counts the engine's networks of the driver.
	Networks int
}

// handoverAPI is the first engine API version (Docker Engine 28) whose
// containers' network namespaces exist when the driver's Join comes.
const handoverAPI = "1.48"

// JoinMode is the mode the containers of an engine of API version api join
// docker-cni networks in by default: handover where the namespace exists
// at Join (Docker 28 and newer), else move.
func JoinMode(api string) string {
	if apiAtLeast(api, handoverAPI) {
		return "handover"
	}
	return "move"
}

func apiAtLeast(v, min string) bool {
	a, b := strings.SplitN(v, ".", 2), strings.SplitN(min, ".", 2)
	if len(a) != 2 || len(b) != 2 {
		return false
	}
	am, _ := strconv.Atoi(a[0])
	an, _ := strconv.Atoi(a[1])
	bm, _ := strconv.Atoi(b[0])
	bn, _ := strconv.Atoi(b[1])
	return am > bm || am == bm && an >= bn
}

// EngineChecks: does each engine answer, which version is it, in which
// mode do its containers join, and does it find the driver?
func EngineChecks(engines []EngineFacts) []Check {
	if len(engines) == 0 {
		c := check(AreaEngine, "--docker-host", Fail, "no engine given")
		c.Fix = "list every engine that uses docker-cni in --docker-host"
		return []Check{c}
	}
	var out []Check
	for _, e := range engines {
		out = append(out, engineCheck(e))
	}
	return out
}

func engineCheck(e EngineFacts) Check {
	if e.Err != "" {
		c := check(AreaEngine, e.Host, Fail, "does not answer: "+e.Err)
		c.Details = []string{"docker-cni keeps everything of an engine it cannot ask (no network, endpoint or address of it is released) until it answers"}
		c.Fix = "start the engine, or take it out of the daemon's --docker-host"
		return c
	}
	mode := JoinMode(e.APIVersion)
	c := check(AreaEngine, e.Host, OK, fmt.Sprintf("Docker %s (API %s): containers join in %s mode", e.Version, e.APIVersion, mode))
	c.Details = append(c.Details, fmt.Sprintf("%d network(s) of driver %q", e.Networks, e.Driver))
	if mode == "move" {
		c.Details = append(c.Details, "move mode: the chain runs in a scratch namespace and what it sets inside beyond the interface is lost; -o cni.join=direct needs Docker 28+")
	}
	switch {
	case e.SocketExists:
		c.Details = append(c.Details, fmt.Sprintf("finds driver %q at %s", e.Driver, e.DriverSocket))
	case len(e.ManagedPlugins) > 0:
		c.Details = append(c.Details, fmt.Sprintf("managed plugin(s) %s: docker-cni's driver is named after the plugin, tag included", strings.Join(e.ManagedPlugins, ", ")))
	default:
		c.Status = Fail
		c.Summary += fmt.Sprintf("; it cannot find driver %q: no %s and no managed network plugin", e.Driver, e.DriverSocket)
		c.Fix = "start docker-cni serving --socket " + e.DriverSocket
	}
	return c
}
