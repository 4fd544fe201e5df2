package e2e

import (
	"fmt"
	"strings"
)

// staleEndpointCount is what Docker says when its own count of a network's
// endpoints is above the endpoints it has.
const staleEndpointCount = "has active endpoints"

// removeNetwork runs docker network rm. Docker 20.10 can go on counting
// endpoints of a network whose containers are all gone, after many removed
// at once (moby/moby#42119: its endpoint_count record in local-kv.db): the
// bench saw it on a network of Docker's own bridge driver too. It corrects
// the count when it starts. So when network rm fails with "has active
// endpoints" while Docker itself lists no container on the network, the
// engine is restarted and network rm tried once more; restarted says so.
// Any other failure is returned as it is.
func (e engine) removeNetwork(name string) (restarted bool, err error) {
	out, err := e.docker("network", "rm", name)
	if err == nil || !strings.Contains(out, staleEndpointCount) {
		return false, wrapNetworkRm(name, out, err)
	}
	if left := e.attached(name); left != "" {
		return false, fmt.Errorf("docker network rm %s: %v: %s (containers on it: %s)", name, err, out, left)
	}
	if err := e.restart(func() {}); err != nil {
		return false, err
	}
	out, err = e.docker("network", "rm", name)
	return true, wrapNetworkRm(name, out, err)
}

func wrapNetworkRm(name, out string, err error) error {
	if err != nil {
		return fmt.Errorf("docker network rm %s: %v: %s", name, err, out)
	}
	return nil
}

// attached lists the containers Docker has on a network, by either of its
// two accounts: docker ps's filter and the network's own endpoint list.
func (e engine) attached(name string) string {
	ps, _ := e.docker("ps", "-aq", "--filter", "network="+name)
	eps, _ := e.docker("network", "inspect", "-f", "{{range $id, $c := .Containers}}{{$c.Name}} {{end}}", name)
	return strings.TrimSpace(ps + " " + eps)
}

// isNoSuchNetwork: network rm failed as the network is gone already (the
// test removed it); engines word it "not found" or "No such network".
func isNoSuchNetwork(err error) bool {
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "not found") || strings.Contains(msg, "no such network")
}
