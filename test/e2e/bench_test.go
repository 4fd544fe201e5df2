package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The side-by-side bench. `make bench` runs it once (-benchtime 1x), after
// the Go benchmarks of translate/ and state/ and driver's libcni floor,
// whose output it reads from the file $BENCH_GO_RESULTS names; it prints a
// table and writes docs/performance.md and docs/performance.png. Timings
// never fail anything: the targets are reported, not asserted.
//
// Subnets: 10.231.120.0/24 to 10.231.125.0/24 (three per engine), the
// scale network 10.231.132.0/22 with a Docker bridge network beside it
// (10.231.136.0/24, 137 on the second engine), the direct network
// 10.231.128.0/24 (the floor, which runs before in a process of its own,
// uses 128 and 129).

const (
	// benchRuns is how many timed starts each network kind gets.
	benchRuns = 20
	// benchParallel containers start at once, benchRounds times per kind.
	benchParallel, benchRounds = 50, 3
	// benchProbes timed starts measure Join at each scale level.
	benchProbes = 10
	// benchFillBudget bounds the filling of the scale network.
	benchFillBudget = 15 * time.Minute
)

// The network kinds a container start is timed on.
const (
	kindNone      = "none"
	kindBridge    = "Docker bridge"
	kindGenerated = "cni generated"
	kindBound     = "cni bound"
	// kindDirect is the generated chain with -o cni.join=direct: the
	// interface stays where the plugin made it. Only an engine whose
	// sandbox exists at Join (28+) has it.
	kindDirect = "cni direct"
)

var benchKinds = []string{kindNone, kindBridge, kindGenerated, kindBound, kindDirect}

// cniKinds are the kinds that are docker-cni networks.
var cniKinds = []string{kindGenerated, kindBound, kindDirect}

// benchLevels are the live endpoint counts Join and RSS are measured at.
var benchLevels = []int{1, 100, 500, 1000}

// benchNet is a network a start is timed on.
type benchNet struct {
	kind, name string
}

// BenchmarkSideBySide times container starts on Docker's bridge driver and
// docker-cni networks side by side on every engine, 50 at once, and Join
// and the daemon's RSS as endpoints pile up, then writes the report.
func BenchmarkSideBySide(b *testing.B) {
	if v := os.Getenv("BENCH_LEVELS"); v != "" {
		// e.g. BENCH_LEVELS=1,20 for a quick try of the scale part.
		benchLevels = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				b.Fatalf("BENCH_LEVELS: %q is not a count", f)
			}
			benchLevels = append(benchLevels, n)
		}
	}
	rep := &benchReport{date: time.Now()}
	off := logSize(b)
	// Registered first, so that it runs last: after the networks are
	// removed, which it reports on too.
	b.Cleanup(func() {
		rep.failures = failuresSince(b, off)
		rep.write(b)
	})
	for _, e := range s.engines {
		e.removeStaleBench(b, &rep.engineNotes)
		rep.engines = append(rep.engines, engineInfo(e))
		nets, ids := benchNetworks(b, e, &rep.engineNotes)
		b.Run("start/"+e.name, func(b *testing.B) { rep.starts = append(rep.starts, benchStarts(b, e, nets, ids, &rep.failedStarts)) })
		b.Run("parallel/"+e.name, func(b *testing.B) {
			rep.parallel = append(rep.parallel, benchParallelStarts(b, e, nets, ids, &rep.failedStarts))
		})
	}
	for _, e := range s.engines {
		b.Run("scale/"+e.name, func(b *testing.B) {
			rep.scale = append(rep.scale, benchScale(b, e, &rep.failedStarts, &rep.engineNotes))
		})
	}
}

// write prints the report and writes docs/performance.md and .png.
func (rep *benchReport) write(b testing.TB) {
	if p := os.Getenv("BENCH_GO_RESULTS"); p != "" {
		out, err := os.ReadFile(p)
		if err != nil {
			b.Fatalf("BENCH_GO_RESULTS: %v", err)
		}
		rep.goBench = goBenchLines(string(out))
	}
	fmt.Print(rep.text())
	docs := filepath.Join(s.repo, "docs")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := plotStarts(filepath.Join(docs, "performance.png"), rep); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "performance.md"), []byte(rep.markdown()), 0o644); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("wrote %s and performance.png\n", filepath.Join(docs, "performance.md"))
}

// engineInfo is an engine's version and whether it runs with iptables.
func engineInfo(e engine) benchEngine {
	v, err := e.docker("version", "-f", "{{.Server.Version}}")
	if err != nil {
		v = "unknown (" + v + ")"
	}
	// test/engines/current.sh starts the current engine with
	// --iptables=false: with it on, it would fight 20.10 over its chains.
	return benchEngine{name: e.name, version: v, iptables: e.name != "current"}
}

// benchMust runs the docker CLI and fails the benchmark on error.
func (e engine) benchMust(b testing.TB, args ...string) string {
	b.Helper()
	out, err := e.docker(args...)
	if err != nil {
		b.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// benchNetwork creates a network, removed with its containers at the end.
func (e engine) benchNetwork(b testing.TB, notes *noteLog, name string, args ...string) {
	b.Helper()
	e.benchMust(b, append(append([]string{"network", "create"}, args...), name)...)
	b.Cleanup(func() {
		if err := e.removeBenchNetwork(b, notes, name); err != nil {
			b.Error(err)
		}
	})
}

// removeBenchNetwork removes a network and its containers, 8 at a time.
// Where Docker 20.10's endpoint count stays stale (removeNetwork), the
// engine restart is reported.
func (e engine) removeBenchNetwork(b testing.TB, notes *noteLog, name string) error {
	ids, _ := e.docker("ps", "-aq", "--filter", "network="+name)
	parallelN(8, strings.Fields(ids), func(id string) error {
		_, err := e.docker("rm", "-f", id)
		return err
	})
	restarted, err := e.removeNetwork(name)
	if restarted {
		notes.add(b, "%s: `docker network rm %s` failed with %q once its containers were all removed; the engine was restarted (it corrects its endpoint counts at start)",
			e.name, name, staleEndpointCount)
	}
	return err
}

// removeStaleBench removes the bench networks (and their containers) a
// killed earlier run left on the engine, and the bridges and rules
// docker-cni made for them (the daemon of that run never heard of their
// removal).
func (e engine) removeStaleBench(b testing.TB, notes *noteLog) {
	out, _ := e.docker("network", "ls", "--no-trunc", "--filter", "name=bench-"+e.name+"-", "--format", "{{.Name}} {{.ID}}")
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		notes.add(b, "%s: network %s was left by an earlier run; removed", e.name, f[0])
		if err := e.removeBenchNetwork(b, notes, f[0]); err != nil {
			b.Fatal(err)
		}
		if err := sweepNetwork(context.Background(), f[1]); err != nil {
			b.Fatal(err)
		}
	}
}

// benchSuffix makes names of one run unique.
func benchSuffix() string { return strconv.FormatInt(time.Now().UnixNano()%1000000, 10) }

// benchNetworks makes the engine's Docker bridge, generated and bound
// networks (and direct one, where the engine has it), and returns them with the kind of every docker-cni network and
// pool ID (as the daemon's log cuts them) among them.
func benchNetworks(b *testing.B, e engine, notes *noteLog) ([]benchNet, map[string]string) {
	k := e.net / 16
	sub := func(i int) string { return fmt.Sprintf("10.231.%d.0/24", 120+3*k+i) }
	pre := fmt.Sprintf("bench-%s-%s-", e.name, benchSuffix())
	nets := []benchNet{{kindNone, "none"}, {kindBridge, pre + "bridge"}, {kindGenerated, pre + "gen"}, {kindBound, pre + "bound"}}
	e.benchNetwork(b, notes, nets[1].name, "--subnet", sub(0))
	e.benchNetwork(b, notes, nets[2].name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", sub(1))

	// The bound conflist: kubelet's shape, lean (no iptables plugin, no
	// ipMasq), in the daemon's conf dir.
	cniName, bridge := "bench-bound-"+e.name, fmt.Sprintf("bnchbound%d", k)
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": %q,
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}}
  ]
}`, cniName, bridge, sub(2), b.TempDir())
	file := filepath.Join(s.d.confDir, "90-"+cniName+".conflist")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.Remove(file) })
	run(context.Background(), "ip", "link", "del", bridge)
	b.Cleanup(func() { run(context.Background(), "ip", "link", "del", bridge) })
	e.benchNetwork(b, notes, nets[3].name, "-d", s.driver, "--ipam-driver", s.driver, "--ipam-opt", "cni.network="+cniName, "--subnet", sub(2))

	if e.joinMode == "handover" {
		nets = append(nets, benchNet{kindDirect, pre + "direct"})
		e.benchNetwork(b, notes, nets[4].name, "-d", s.driver, "--ipam-driver", s.driver, "-o", "cni.join=direct", "--subnet", "10.231.128.0/24")
	}
	ids := map[string]string{}
	for _, n := range nets[2:] {
		for _, id := range cniIDs(b, e, n.name) {
			ids[id] = n.kind
		}
	}
	return nets, ids
}

// cniIDs are the IDs docker-cni's log names a network (cut to 12
// characters) and its pools (whole, in the request) by.
func cniIDs(b testing.TB, e engine, name string) []string {
	id := e.benchMust(b, "network", "inspect", "-f", "{{.Id}}", name)
	recs, err := s.d.records("networks")
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range recs {
		if r["ID"] != id {
			continue
		}
		out := []string{id[:12]}
		pools, _ := r["PoolIDs"].([]any)
		for _, p := range pools {
			if ps, ok := p.(string); ok {
				out = append(out, ps)
			}
		}
		return out
	}
	b.Fatalf("docker-cni has no record of network %s (%s)", name, id)
	return nil
}

// timedRun times `docker run --rm --network N image true`.
func timedRun(e engine, network string) (time.Duration, error) {
	start := time.Now()
	out, err := e.docker("run", "--rm", "--network", network, image, "true")
	if err != nil {
		return 0, fmt.Errorf("docker run --network %s: %v: %s", network, err, out)
	}
	return time.Since(start), nil
}

// benchStarts times benchRuns starts per kind, round-robin (each round
// starting one kind later), after one untimed start per kind, and reads
// docker-cni's requests of the timed ones from its log. A failed start is
// left out and reported.
func benchStarts(b *testing.B, e engine, nets []benchNet, ids map[string]string, fails *noteLog) *startResult {
	res := &startResult{engine: e.name, runs: map[string]durs{}, ids: ids}
	for _, n := range nets {
		if _, err := timedRun(e, n.name); err != nil {
			fails.add(b, "%s, untimed start: %v", e.name, err)
		}
	}
	off := logSize(b)
	for r := range benchRuns {
		for i := range nets {
			n := nets[(r+i)%len(nets)]
			d, err := timedRun(e, n.name)
			if err != nil {
				fails.add(b, "%s, timed start %d on %s (left out): %v", e.name, r, n.kind, err)
				fails.check(b)
				continue
			}
			res.runs[n.kind] = append(res.runs[n.kind], d)
		}
	}
	res.reqs = requestsSince(b, off)
	for _, n := range nets {
		b.ReportMetric(ms(res.runs[n.kind].median()), strings.ReplaceAll(n.kind, " ", "-")+"-ms")
	}
	return res
}

// benchParallelStarts times benchParallel `docker run -d` at once on the
// Docker bridge and the generated network, benchRounds times each,
// alternating; the containers are removed 8 at a time after each round. A
// start that fails is reported; its round's time is kept.
func benchParallelStarts(b *testing.B, e engine, nets []benchNet, ids map[string]string, fails *noteLog) *parallelResult {
	res := &parallelResult{engine: e.name, start: map[string]durs{}}
	for r := range benchRounds {
		order := []benchNet{nets[1], nets[2]}
		if r%2 == 1 {
			order[0], order[1] = order[1], order[0]
		}
		for _, n := range order {
			ctrs := make([]string, benchParallel)
			for j := range ctrs {
				ctrs[j] = fmt.Sprintf("bench-par-%s-%d-%d", e.name, r, j)
			}
			b.Cleanup(func() { e.docker(append([]string{"rm", "-f"}, ctrs...)...) })
			off := logSize(b)
			start := time.Now()
			errs := parallel(ctrs, func(c string) error {
				out, err := e.docker("run", "-d", "--name", c, "--network", n.name, image, "sleep", "3600")
				if err != nil {
					return fmt.Errorf("docker run -d %s on %s: %v: %s", c, n.name, err, out)
				}
				return nil
			})
			res.start[n.kind] = append(res.start[n.kind], time.Since(start))
			for _, r := range requestsSince(b, off) {
				if r.method == "NetworkDriver.Join" && ids[r.network] == kindGenerated {
					res.joins = append(res.joins, r)
				}
			}
			for _, err := range errs {
				if err != nil {
					fails.add(b, "%s, %d at once, round %d on %s: %v", e.name, benchParallel, r, n.kind, err)
				}
			}
			fails.check(b)
			for _, err := range parallelN(8, ctrs, func(c string) error {
				// A failed start may have left nothing to remove.
				if out, err := e.docker("rm", "-f", c); err != nil && !strings.Contains(out, "No such container") {
					return fmt.Errorf("docker rm -f %s: %v: %s", c, err, out)
				}
				return nil
			}) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.ReportMetric(ms(res.start[kindBridge].median()), "bridge-ms")
	b.ReportMetric(ms(res.start[kindGenerated].median()), "generated-ms")
	return res
}

// benchScale fills a generated network with sleeping containers up to each
// level and measures, there, Join over benchProbes starts and the
// daemon's RSS. A start that fails during the fill is retried once, a
// timed one is left out; both are reported. The fill stops at benchFillBudget; the levels not reached are
// reported as such.
func benchScale(b *testing.B, e engine, fails, notes *noteLog) *scaleResult {
	res := &scaleResult{engine: e.name}
	name := fmt.Sprintf("bench-%s-%s-scale", e.name, benchSuffix())
	e.benchNetwork(b, notes, name, "-d", s.driver, "--ipam-driver", s.driver, "--subnet", "10.231.132.0/22")
	netID := cniIDs(b, e, name)[0]
	// Docker's bridge driver, timed at the same load: what a start costs
	// there with the same containers live (on another bridge).
	bridge := name + "-bridge"
	e.benchNetwork(b, notes, bridge, "--subnet", fmt.Sprintf("10.231.%d.0/24", 136+e.net/16))
	live := 0 // containers started (or being started)
	var mu sync.Mutex
	deadline := time.Now().Add(benchFillBudget)
	for _, level := range benchLevels {
		var todo []string
		for i := live; i < level; i++ {
			todo = append(todo, fmt.Sprintf("%s-%03d", name, i))
		}
		start := time.Now()
		errs := parallelN(8, todo, func(c string) error {
			if time.Now().After(deadline) {
				return nil
			}
			mu.Lock()
			live++
			n := live
			mu.Unlock()
			out, err := e.docker("run", "-d", "--name", c, "--network", name, image, "sleep", "3600")
			if err == nil {
				return nil
			}
			fails.add(b, "%s, filling the scale network, %s at about %d live (retried): %s", e.name, c, n, out)
			e.docker("rm", "-f", c)
			if out, err := e.docker("run", "-d", "--name", c, "--network", name, image, "sleep", "3600"); err != nil {
				return fmt.Errorf("docker run -d %s, twice: %v: %s", c, err, out)
			}
			return nil
		})
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		fails.check(b)
		if live < level {
			res.note = fmt.Sprintf("Filling stopped at %d live endpoints after %s (budget).", live, benchFillBudget)
			break
		}
		lv := scaleLevel{live: level, fill: time.Since(start)}
		off := logSize(b)
		for range benchProbes {
			// Interleaved: the same load for both.
			lv.start = append(lv.start, probeStart(b, e, name, level, fails)...)
			lv.bridgeStart = append(lv.bridgeStart, probeStart(b, e, bridge, level, fails)...)
		}
		for _, r := range requestsSince(b, off) {
			if r.method == "NetworkDriver.Join" && r.network == netID {
				lv.joins = append(lv.joins, r)
			}
		}
		lv.rssKiB = benchRSS(b)
		lv.gc = benchGC(b, notes)
		res.levels = append(res.levels, lv)
		b.ReportMetric(ms(took(lv.joins).median()), fmt.Sprintf("join-ms-at-%d", level))
		b.ReportMetric(float64(lv.rssKiB)/1024, fmt.Sprintf("rss-MiB-at-%d", level))
	}
	if len(res.levels) > 0 {
		res.state = benchStateLoss(b, res.levels[len(res.levels)-1].live, notes)
	}
	return res
}

// probeStart times one start on network at a scale level: none when it
// failed (reported and left out).
func probeStart(b *testing.B, e engine, network string, level int, fails *noteLog) durs {
	d, err := timedRun(e, network)
	if err != nil {
		fails.add(b, "%s, timed start at %d live (left out): %v", e.name, level, err)
		fails.check(b)
		return nil
	}
	return durs{d}
}

// noteLog collects what the report must say besides the timings: the
// starts that failed (the bench goes on without them, unless there are
// too many), the engines' misbehaviour.
type noteLog struct {
	mu   sync.Mutex
	msgs []string
}

// maxFailedStarts is how many failed starts a run tolerates.
const maxFailedStarts = 20

// add records a note; any goroutine may call it.
func (f *noteLog) add(b testing.TB, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
	b.Logf(format, args...)
}

// check stops the benchmark when too many starts failed; only the
// benchmark's goroutine may call it.
func (f *noteLog) check(b testing.TB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.msgs) > maxFailedStarts {
		b.Fatalf("more than %d starts failed, the last: %s", maxFailedStarts, f.msgs[len(f.msgs)-1])
	}
}

// parallelN runs fn on every item, n at a time, and returns the errors in
// the items' order.
func parallelN(n int, items []string, fn func(string) error) []error {
	errs := make([]error, len(items))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, it := range items {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = fn(it)
		})
	}
	wg.Wait()
	return errs
}

// benchRSS is the docker-cni daemon's VmRSS in KiB.
func benchRSS(b testing.TB) int64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.d.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	b.Fatal("no VmRSS in the daemon's /proc status")
	return 0
}
