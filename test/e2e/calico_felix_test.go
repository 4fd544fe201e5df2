package e2e

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker-cni/docker-cni/test/cri"
)

// startFelix runs calico-felix for node on the datastore of env (FELIX_*
// settings), iptables dataplane, until the end of the test; it reports
// ready once it has synced with the datastore and programmed the dataplane.
// The test registers cleanFelix first: felix leaves its rules behind.
func startFelix(t *testing.T, bin, dir, node string, datastore []string, healthPort int) *background {
	t.Helper()
	portsFree(t, healthPort)
	env := append([]string{
		"FELIX_FELIXHOSTNAME=" + node,
		"FELIX_LOGSEVERITYSCREEN=info", "FELIX_LOGFILEPATH=none", "FELIX_LOGSEVERITYSYS=none",
		"FELIX_HEALTHENABLED=true", "FELIX_HEALTHHOST=127.0.0.1", fmt.Sprintf("FELIX_HEALTHPORT=%d", healthPort),
		"FELIX_PROMETHEUSMETRICSENABLED=false", "FELIX_USAGEREPORTINGENABLED=false",
		"FELIX_IPV6SUPPORT=false", "FELIX_BPFENABLED=false", "FELIX_NFTABLESMODE=Disabled",
		"FELIX_XDPENABLED=false", "FELIX_WIREGUARDENABLED=false",
		"FELIX_DEFAULTENDPOINTTOHOSTACTION=ACCEPT", "FELIX_REPORTINGINTERVALSECS=0",
	}, datastore...)
	b := startBackground(t, "calico-felix", filepath.Join(dir, "felix.log"), env, filepath.Join(bin, "calico-felix"))
	b.waitReady(t, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readiness", healthPort))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readiness: %s", resp.Status)
		}
		return nil
	})
	return b
}

// cleanFelix registers the removal, at the end of the test, of what felix
// and Calico's plugins leave behind: felix's iptables chains and rules, its
// ipsets, and the state dirs (/var/run/calico, /var/lib/calico) they made.
func cleanFelix(t *testing.T) {
	t.Helper()
	var made []string
	for _, d := range []string{"/var/run/calico", "/var/lib/calico"} {
		if _, err := os.Stat(d); os.IsNotExist(err) {
			made = append(made, d)
		}
	}
	t.Cleanup(func() {
		for _, save := range []string{"iptables-nft-save", "iptables-legacy-save"} {
			if err := removeCaliChains(save); err != nil {
				t.Errorf("remove felix's iptables chains: %v", err)
			}
		}
		out, _ := exec.Command("ipset", "list", "-n").Output()
		for _, set := range strings.Fields(string(out)) {
			if strings.HasPrefix(set, "cali") {
				exec.Command("ipset", "destroy", set).Run()
			}
		}
		for _, d := range made {
			os.RemoveAll(d)
		}
	})
}

// removeCaliChains removes felix's cali-* chains, and the rules it put in
// the built-in chains (those that jump to its chains, and those its
// "cali:<hash>" comment marks: FORWARD's mark and accept), from every
// table iptables-save (of one backend) shows.
func removeCaliChains(save string) error {
	restore := strings.Replace(save, "-save", "", 1)
	out, err := exec.Command(save).Output()
	if err != nil {
		return nil // that backend is not there
	}
	table := ""
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":cali-"):
			chains = append(chains, table+" "+strings.Fields(line[1:])[0])
		case strings.HasPrefix(line, "-A ") && !strings.HasPrefix(line, "-A cali-") &&
			(strings.Contains(line, " -j cali-") || strings.Contains(line, `--comment "cali:`) || strings.Contains(line, "--comment cali:")):
			args := append([]string{"-t", table, "-D"}, cri.SplitRule(strings.TrimPrefix(line, "-A "))...)
			if out, err := exec.Command(restore, args...).CombinedOutput(); err != nil {
				return fmt.Errorf("%s %v: %v: %s", restore, args, err, out)
			}
		}
	}
	for _, verb := range []string{"-F", "-X"} {
		for _, c := range chains {
			f := strings.Fields(c)
			exec.Command(restore, "-t", f[0], verb, f[1]).Run()
		}
	}
	return nil
}
