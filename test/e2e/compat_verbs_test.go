package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/docker-cni/docker-cni/test/compat"
)

// The CNI verbs beyond ADD and DEL, by conflist version, as the spec has
// them: CHECK from 0.4.0, STATUS and GC from 1.1.0.
var (
	checkVersions  = []string{"0.4.0", "1.0.0", "1.1.0"}
	statusVersions = []string{"1.1.0"}
	gcVersions     = []string{"1.1.0"}
)

// verbs checks, against the cell's real plugins, the verbs docker-cni sends
// beyond ADD and DEL: STATUS before each Join's ADD where the conflist's
// version has it, and never before; with `docker-cni gc`, CHECK of every
// container whose interface is where its chain put it (handover, not move)
// where the version has it, and every CHECK passes; never GC to a bound
// network (its plugins keep the pods' attachments too). For bridge cells, a
// generated network at the cell's version is sent GC where the version has
// it, and its container keeps its network.
func (r *cellRun) verbs() error {
	var nets []string
	for _, a := range r.att[:3] {
		if a.network != "" && !slices.Contains(nets, a.network) {
			nets = append(nets, a.network)
		}
	}
	gen, err := r.generatedNetwork()
	if err != nil {
		return err
	}
	if _, err := r.d.cli("gc"); err != nil {
		return err
	}
	ran, failed, err := r.verbLog()
	if err != nil {
		return err
	}
	wantCheck := slices.Contains(checkVersions, r.c.Version) && r.e.joinMode == "handover"
	wantStatus := slices.Contains(statusVersions, r.c.Version)
	for _, n := range nets {
		id, err := r.e.docker("network", "inspect", "-f", "{{.Id}}", n)
		if err != nil {
			return fmt.Errorf("docker network inspect %s: %v: %s", n, err, id)
		}
		id = id[:12]
		if e := failed[id]; e != "" {
			return fmt.Errorf("CNI CHECK failed for a container of %s: %s", n, e)
		}
		for _, v := range []struct {
			verb string
			want bool
		}{{"STATUS", wantStatus}, {"CHECK", wantCheck}, {"GC", false}} {
			if got := ran[id][v.verb] > 0; got != v.want {
				return fmt.Errorf("network %s (CNI %s, %s mode): %s sent: %v, want %v", n, r.c.Version, r.e.joinMode, v.verb, got, v.want)
			}
		}
	}
	if gen == "" {
		return nil
	}
	if got, want := ran[gen]["GC"] > 0, slices.Contains(gcVersions, r.c.Version); got != want {
		return fmt.Errorf("generated network (CNI %s): GC sent: %v, want %v", r.c.Version, got, want)
	}
	if out, err := r.e.docker("exec", r.ctr(0)+"-gen", "ping", "-c", "1", "-W", "2", r.genSubnet().Addr().Next().String()); err != nil {
		return fmt.Errorf("after GC, the generated network's container cannot reach its gateway: %s", compat.Short(out))
	}
	if out, err := r.e.docker("rm", "-f", r.ctr(0)+"-gen"); err != nil {
		return fmt.Errorf("docker rm: %s", compat.Short(out))
	}
	if out, err := r.e.docker("network", "rm", fmt.Sprintf("cmp-%d-gen", r.idx)); err != nil {
		return fmt.Errorf("docker network rm of the generated network: %s", compat.Short(out))
	}
	return nil
}

// genSubnet is the cell's subnet for a generated network.
func (r *cellRun) genSubnet() netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.231.%d.0/24", 150+r.idx%compatSubnets))
}

// generatedNetwork makes, for a bridge cell, a network from Docker flags
// alone at the cell's CNI version with one container, and returns the
// network's short ID ("" for other cells).
func (r *cellRun) generatedNetwork() (string, error) {
	if r.c.Main != compat.MainBridge {
		return "", nil
	}
	name, ctr := fmt.Sprintf("cmp-%d-gen", r.idx), r.ctr(0)+"-gen"
	driver := strings.TrimSuffix(filepath.Base(r.d.socket), ".sock")
	r.cleanup(func() {
		r.e.docker("rm", "-f", ctr)
		r.e.docker("network", "rm", name)
	})
	id, err := r.e.docker("network", "create", "-d", driver, "--ipam-driver", driver, "--subnet", r.genSubnet().String(), "-o", "cni.version="+r.c.Version, name)
	if err != nil {
		return "", fmt.Errorf("generated network at CNI %s: %s", r.c.Version, compat.Short(id))
	}
	if out, err := r.e.docker("run", "-d", "--name", ctr, "--network", name, image, "sleep", "3600"); err != nil {
		return "", fmt.Errorf("container on the generated network: %s", compat.Short(out))
	}
	return id[:12], nil
}

var (
	logCommand = regexp.MustCompile(`msg="cni plugin ran" .*\bcommand=(\S+).* network=([0-9a-f]{12})\b`)
	logCheck   = regexp.MustCompile(`msg="CNI CHECK failed.* network=([0-9a-f]{12})\b`)
)

// verbLog reads the daemon's log since the cell began: the plugin runs by
// network and command, and the CHECK failures by network.
func (r *cellRun) verbLog() (map[string]map[string]int, map[string]string, error) {
	b, err := os.ReadFile(r.d.log.Name())
	if err != nil {
		return nil, nil, err
	}
	ran, failed := map[string]map[string]int{}, map[string]string{}
	for _, line := range strings.Split(string(b[min(int64(len(b)), r.logMark):]), "\n") {
		if m := logCommand.FindStringSubmatch(line); m != nil {
			if ran[m[2]] == nil {
				ran[m[2]] = map[string]int{}
			}
			ran[m[2]][m[1]]++
		}
		if m := logCheck.FindStringSubmatch(line); m != nil {
			_, e, _ := strings.Cut(line, " err=")
			failed[m[1]] = e
		}
	}
	return ran, failed, nil
}
