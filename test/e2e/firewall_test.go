package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerUserRules: dockerd sets the FORWARD policy to DROP and bridged
// traffic passes iptables, so on a conflist with no firewall plugin (the
// shape of many kubelet conflists) nothing would pass. docker-cni accepts
// the bound subnet in DOCKER-USER while the network exists.
func TestDockerUserRules(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		cniName := "e2e-nofw-" + e.name
		bridge := "e2enofw" + e.name[:3]
		subnet := e.subnet(17)
		freshBridge(t, bridge)
		writeConflist(t, "20-"+cniName+".conflist", fmt.Sprintf(`{"cniVersion": "1.0.0", "name": %q, "plugins": [
		  {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": true,
		   "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}},
		  {"type": "portmap", "capabilities": {"portMappings": true}}]}`, cniName, bridge, subnet, filepath.Join(s.d.dir, "nofw")))
		name := uniq(t, e, "nofw")
		e.network(t, name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName)
		id := e.must(t, "network", "inspect", "-f", "{{.Id}}", name)
		comment := "docker-cni network " + id[:12]

		rules, err := run(t.Context(), "iptables", "-S", "DOCKER-USER")
		if err != nil {
			t.Fatalf("iptables -S DOCKER-USER: %v\n%s", err, rules)
		}
		var ours []string
		for _, l := range strings.Split(rules, "\n") {
			if strings.Contains(l, comment) {
				ours = append(ours, l)
			}
		}
		if len(ours) != 2 || !strings.Contains(rules, "-s "+subnet) || !strings.Contains(rules, "-d "+subnet) {
			t.Fatalf("DOCKER-USER rules for %s: %v\n%s", subnet, ours, rules)
		}
		c1, c2 := name+"-c1", name+"-c2"
		e.container(t, c1, "--network", name)
		e.container(t, c2, "--network", name)
		ip1, ip2 := e.inspectIP(t, c1, name), e.inspectIP(t, c2, name)
		checkReach(t, e, c1, ip1, c2, ip2)

		// Control: without the rules, the same traffic is dropped. The daemon
		// is stopped first, or its reconcile pass would restore them.
		s.d.stopFor(t)
		for _, r := range ours {
			args := append([]string{"-D"}, strings.Fields(strings.TrimPrefix(r, "-A "))...)
			fixed := fixComment(args, comment)
			if out, err := run(t.Context(), "iptables", fixed...); err != nil {
				t.Fatalf("iptables %v: %v\n%s", fixed, err, out)
			}
		}
		if err := e.ping(c1, ip2); err == nil {
			t.Errorf("with the DOCKER-USER rules removed, %s still reached %s: the rules are not what lets traffic through", c1, ip2)
		}
		// docker-cni restores its rules when it starts (and on every
		// reconcile pass).
		if err := s.d.start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "DOCKER-USER rules restored", func() bool {
			out, _ := run(t.Context(), "iptables", "-S", "DOCKER-USER")
			return strings.Count(out, comment) == 2
		})
		checkReach(t, e, c1, ip1, c2, ip2)

		e.must(t, "rm", "-f", c1, c2)
		e.must(t, "network", "rm", name)
		if out, _ := run(t.Context(), "iptables", "-S", "DOCKER-USER"); strings.Contains(out, comment) {
			t.Errorf("network rm left DOCKER-USER rules:\n%s", out)
		}
	})
}

// fixComment rejoins the comment iptables -S prints quoted.
func fixComment(args []string, comment string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "--comment" {
			out = append(out, "--comment", comment)
			for i+1 < len(args) && args[i+1] != "-j" {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}
