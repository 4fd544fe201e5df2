package e2e

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// What BenchmarkSideBySide measured, and how it is printed and written.

type benchEngine struct {
	name, version string
	iptables      bool
}

type startResult struct {
	engine string
	// runs are the wall times of the timed starts, by network kind.
	runs map[string]durs
	// reqs are docker-cni's requests during them; ids gives the kind of
	// every docker-cni network and pool ID among them.
	reqs []request
	ids  map[string]string
}

type parallelResult struct {
	engine string
	start  map[string]durs
	// joins are docker-cni's Joins of the starts on the generated network.
	joins []request
}

type scaleLevel struct {
	live  int
	fill  time.Duration
	start durs
	// bridgeStart are starts on a Docker bridge network at the same load,
	// interleaved with start.
	bridgeStart durs
	// joins are docker-cni's Joins of the timed starts.
	joins  []request
	rssKiB int64
	// gc is how long `docker-cni gc` took: a reconcile pass with a CNI
	// CHECK of every container where it applies.
	gc time.Duration
}

type scaleResult struct {
	engine string
	levels []scaleLevel
	note   string
	// state is the daemon's restart and rebuild at the top level.
	state *stateResult
}

type benchReport struct {
	date     time.Time
	engines  []benchEngine
	starts   []*startResult
	parallel []*parallelResult
	scale    []*scaleResult
	// goBench are the result lines of the Go benchmarks make bench ran
	// before (translate, state, the libcni floor).
	goBench []string
	// failures are the requests docker-cni failed during the bench.
	failures []string
	// failedStarts are the docker runs that failed; engineNotes what the
	// engines did wrong besides.
	failedStarts, engineNotes noteLog
}

// durs are durations with the statistics the report uses.
type durs []time.Duration

func (d durs) sorted() durs { c := slices.Clone(d); slices.Sort(c); return c }

func (d durs) median() time.Duration {
	if len(d) == 0 {
		return 0
	}
	c := d.sorted()
	return (c[(len(c)-1)/2] + c[len(c)/2]) / 2
}

// pct is the nearest-rank p-th percentile.
func (d durs) pct(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	c := d.sorted()
	i := int(float64(len(c))*p/100+0.999999) - 1
	return c[max(0, min(i, len(c)-1))]
}

func (d durs) min() time.Duration { return d.pct(0) }
func (d durs) max() time.Duration { return d.pct(100) }

func (d durs) sum() (t time.Duration) {
	for _, x := range d {
		t += x
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// request is one "request done" line of docker-cni's debug log.
type request struct {
	method, network, pool string
	took, exec            time.Duration
	runs                  int
}

var (
	logAttr = regexp.MustCompile(` (method|network|duration|cni_exec|cni_runs)=(\S+)`)
	// The log's pool attribute is cut to 12 characters, which all
	// docker-cni pool IDs share ("docker-cni-1"): the whole ID is taken
	// from the request.
	logPool = regexp.MustCompile(`\\"PoolID\\":\\"([^\\"]+)\\"`)
)

func logSize(b testing.TB) int64 {
	st, err := os.Stat(s.d.log.Name())
	if err != nil {
		b.Fatal(err)
	}
	return st.Size()
}

// requestsSince parses the requests the daemon logged from offset off on.
func requestsSince(b testing.TB, off int64) []request {
	f, err := os.Open(s.d.log.Name())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		b.Fatal(err)
	}
	var out []request
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line, body, _ := strings.Cut(sc.Text(), " request=")
		if !strings.Contains(line, `msg="request done"`) {
			continue
		}
		var r request
		if m := logPool.FindStringSubmatch(body); m != nil {
			r.pool = m[1]
		}
		for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
			switch m[1] {
			case "method":
				r.method = m[2]
			case "network":
				r.network = m[2]
			case "duration":
				r.took, _ = time.ParseDuration(m[2])
			case "cni_exec":
				r.exec, _ = time.ParseDuration(m[2])
			case "cni_runs":
				r.runs, _ = strconv.Atoi(m[2])
			}
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		b.Fatal(err)
	}
	return out
}

// failuresSince are the "request failed" lines the daemon logged from
// offset off on, without their time.
func failuresSince(b testing.TB, off int64) []string {
	f, err := os.Open(s.d.log.Name())
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		b.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, `msg="request failed"`) {
			_, l, _ = strings.Cut(l, `msg="request failed" `)
			out = append(out, l)
		}
	}
	return out
}

// kindOf is the network kind a request was about, "" for none of ours.
func (r *startResult) kindOf(q request) string {
	if k, ok := r.ids[q.network]; ok {
		return k
	}
	return r.ids[q.pool]
}

// requestMethods orders the methods of a container's life on a network.
var requestMethods = []string{
	"IpamDriver.RequestAddress", "NetworkDriver.CreateEndpoint", "NetworkDriver.Join",
	"NetworkDriver.ProgramExternalConnectivity", "NetworkDriver.EndpointOperInfo",
	"NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave",
	"NetworkDriver.DeleteEndpoint", "IpamDriver.ReleaseAddress",
}

// calls are the requests of one method on one kind of network.
func (r *startResult) calls(kind, method string) []request {
	var out []request
	for _, q := range r.reqs {
		if q.method == method && r.kindOf(q) == kind {
			out = append(out, q)
		}
	}
	return out
}

// overhead is handler time minus plugin exec time of each call.
func overhead(calls []request) durs {
	var d durs
	for _, q := range calls {
		d = append(d, q.took-q.exec)
	}
	return d
}

func took(calls []request) durs {
	var d durs
	for _, q := range calls {
		d = append(d, q.took)
	}
	return d
}

func execs(calls []request) durs {
	var d durs
	for _, q := range calls {
		d = append(d, q.exec)
	}
	return d
}

// goBenchLines are the result lines of `go test -bench` output.
func goBenchLines(out string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "pkg: ") || strings.HasPrefix(l, "Benchmark") && strings.Contains(l, "ns/op") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	return lines
}

// goBenchMetric is one metric (unit) of the benchmark line whose name
// starts with name.
func (r *benchReport) goBenchMetric(name, unit string) (float64, bool) {
	for _, l := range r.goBench {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.HasPrefix(f[0], name+"-") && f[0] != name {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			if f[i+1] == unit {
				v, err := strconv.ParseFloat(f[i], 64)
				return v, err == nil
			}
		}
	}
	return 0, false
}

// table is one table of the report, printed as text and as markdown.
type table struct {
	title string
	head  []string
	rows  [][]string
	note  string
}

func (t table) text() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%s\n", t.title)
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(t.head, "\t"))
	for _, r := range t.rows {
		fmt.Fprintln(w, strings.ReplaceAll(strings.Join(r, "\t"), "**", ""))
	}
	w.Flush()
	if t.note != "" {
		fmt.Fprintf(&sb, "%s\n", t.note)
	}
	return sb.String()
}

func (t table) markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n### %s\n\n| %s |\n|%s\n", t.title, strings.Join(t.head, " | "), strings.Repeat("---|", len(t.head)))
	for _, r := range t.rows {
		fmt.Fprintf(&sb, "| %s |\n", strings.Join(r, " | "))
	}
	if t.note != "" {
		fmt.Fprintf(&sb, "\n%s\n", t.note)
	}
	return sb.String()
}

func f1(d time.Duration) string { return fmt.Sprintf("%.1f", ms(d)) }
func f2(d time.Duration) string { return fmt.Sprintf("%.2f", ms(d)) }

// spread is "median (min–max)" in ms.
func spread(d durs) string {
	if len(d) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%s–%s)", f1(d.median()), f1(d.min()), f1(d.max()))
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (r *benchReport) engineLabel(name string) string {
	for _, e := range r.engines {
		if e.name == name {
			fw := "iptables off"
			if e.iptables {
				fw = "iptables on"
			}
			return fmt.Sprintf("%s %s (%s)", e.name, e.version, fw)
		}
	}
	return name
}

func (r *benchReport) tables() []table {
	var ts []table
	start := table{title: fmt.Sprintf("Container start: `docker run --rm --network N busybox true`, wall ms, median (min–max) of %d interleaved runs", benchRuns),
		head: append(append([]string{"engine"}, benchKinds...), "generated / bridge", "bound / bridge", "direct / bridge"),
		note: kindDirect + ": the generated chain with `-o cni.join=direct` (the interface stays where the plugin made it); only engines whose sandbox exists at Join (28+) have it."}
	cost := table{title: "Network cost: median start minus the median with --network none, ms",
		head: append([]string{"engine"}, benchKinds[1:]...)}
	for _, sr := range r.starts {
		row := []string{r.engineLabel(sr.engine)}
		for _, k := range benchKinds {
			row = append(row, spread(sr.runs[k]))
		}
		none, br := sr.runs[kindNone].median(), sr.runs[kindBridge].median()
		crow := []string{sr.engine}
		for _, k := range benchKinds[1:] {
			crow = append(crow, "–")
			if len(sr.runs[k]) > 0 {
				crow[len(crow)-1] = f1(sr.runs[k].median() - none)
			}
		}
		for _, k := range cniKinds {
			row = append(row, "–")
			if len(sr.runs[k]) > 0 {
				row[len(row)-1] = fmt.Sprintf("%.2f", ratio(sr.runs[k].median(), br))
			}
		}
		start.rows = append(start.rows, row)
		cost.rows = append(cost.rows, crow)
	}
	ts = append(ts, start, cost)

	floor := table{title: "libcni floor: ADD + DEL of the same chain into a fresh netns, no Docker, no docker-cni (driver's BenchmarkLibCNIFloor), ms per run",
		head: []string{"chain", "ADD + DEL", "ADD", "DEL"}}
	for _, c := range []string{"generated", "bound"} {
		name := "BenchmarkLibCNIFloor/" + c
		total, ok := r.goBenchMetric(name, "ns/op")
		add, _ := r.goBenchMetric(name, "add-ms")
		del, _ := r.goBenchMetric(name, "del-ms")
		if !ok {
			floor.rows = append(floor.rows, []string{c, "not run", "", ""})
			continue
		}
		floor.rows = append(floor.rows, []string{c + " (bridge + host-local)", fmt.Sprintf("%.1f", total/1e6), fmt.Sprintf("%.1f", add), fmt.Sprintf("%.1f", del)})
	}
	ts = append(ts, floor)

	over := table{title: "docker-cni overhead per call (handler time minus plugin exec time), ms, over the timed starts",
		head: []string{"engine", "network", "Join p50", "Join p99", "Leave p50", "Leave p99", "calls"},
		note: "From the daemon's debug log (`request done`: duration, cni_exec). Kernel work a handler does itself " +
			"(netlink: moving a link between network namespaces, deleting one) counts as overhead."}
	per := table{title: "Where a start's time goes in docker-cni: every request of the timed starts, ms",
		head: []string{"engine", "network", "method", "calls", "handler p50", "plugin exec p50", "overhead p50", "overhead p99", "execs/call"}}
	for _, sr := range r.starts {
		for _, k := range cniKinds {
			if len(sr.runs[k]) == 0 {
				continue
			}
			join, leave := sr.calls(k, "NetworkDriver.Join"), sr.calls(k, "NetworkDriver.Leave")
			over.rows = append(over.rows, []string{sr.engine, k, f2(overhead(join).median()), f2(overhead(join).pct(99)),
				f2(overhead(leave).median()), f2(overhead(leave).pct(99)), fmt.Sprintf("%d + %d", len(join), len(leave))})
			var all []request
			for _, m := range requestMethods {
				c := sr.calls(k, m)
				if len(c) == 0 {
					continue
				}
				all = append(all, c...)
				runs := 0
				for _, q := range c {
					runs += q.runs
				}
				per.rows = append(per.rows, []string{sr.engine, k, strings.TrimPrefix(strings.TrimPrefix(m, "NetworkDriver."), "IpamDriver."), strconv.Itoa(len(c)),
					f2(took(c).median()), f2(execs(c).median()), f2(overhead(c).median()), f2(overhead(c).pct(99)), fmt.Sprintf("%.1f", float64(runs)/float64(len(c)))})
			}
			if n := len(join); n > 0 {
				per.rows = append(per.rows, []string{sr.engine, k, "**per start (mean)**", strconv.Itoa(n),
					f2(took(all).sum() / time.Duration(n)), f2(execs(all).sum() / time.Duration(n)), f2(overhead(all).sum() / time.Duration(n)), "", ""})
			}
		}
	}
	ts = append(ts, over, per)

	par := table{title: fmt.Sprintf("%d `docker run -d` at once: wall s until all return, median (min–max) of %d rounds", benchParallel, benchRounds),
		head: []string{"engine", kindBridge, kindGenerated, "generated / bridge", "generated: Join p50 ms", "plugin exec p50", "overhead p50"}}
	for _, pr := range r.parallel {
		sec := func(d durs) string {
			return fmt.Sprintf("%.2f (%.2f–%.2f)", d.median().Seconds(), d.min().Seconds(), d.max().Seconds())
		}
		par.rows = append(par.rows, []string{r.engineLabel(pr.engine), sec(pr.start[kindBridge]), sec(pr.start[kindGenerated]),
			fmt.Sprintf("%.2f", ratio(pr.start[kindGenerated].median(), pr.start[kindBridge].median())), f1(took(pr.joins).median()), f1(execs(pr.joins).median()), f1(overhead(pr.joins).median())})
	}
	ts = append(ts, par)

	for _, sc := range r.scale {
		t := table{title: fmt.Sprintf("Live endpoints on one generated network (%s): Join over %d starts, the daemon's RSS, a `docker-cni gc` pass", r.engineLabel(sc.engine), benchProbes),
			head: []string{"live endpoints", "Join p50 ms", "Join p99 ms", "Join p50 / at 1", "Join plugin exec p50", "Join overhead p50", "start p50 ms", "Docker bridge start p50 ms", "start / Docker bridge", "VmRSS MiB", "gc pass s (CHECK all)", "fill s"},
			note: "The suite's daemon runs with --reconcile-interval 2s (default 1m): its passes over the endpoints run during these measurements. " +
				"Docker bridge start: a start on a Docker bridge network of the same engine, interleaved with the timed ones, with the same containers live (on the docker-cni network). " +
				"`docker-cni gc` runs a reconcile pass with CNI CHECK of every container where it applies (handover mode; not move mode on 20.10). " + sc.note}
		for _, lv := range sc.levels {
			join := took(lv.joins)
			t.rows = append(t.rows, []string{strconv.Itoa(lv.live), f2(join.median()), f2(join.pct(99)),
				fmt.Sprintf("%.2f", ratio(join.median(), took(sc.levels[0].joins).median())), f2(execs(lv.joins).median()), f2(overhead(lv.joins).median()), f1(lv.start.median()),
				f1(lv.bridgeStart.median()), fmt.Sprintf("%.2f", ratio(lv.start.median(), lv.bridgeStart.median())),
				fmt.Sprintf("%.1f", float64(lv.rssKiB)/1024), fmt.Sprintf("%.2f", lv.gc.Seconds()), fmt.Sprintf("%.0f", lv.fill.Seconds())})
		}
		ts = append(ts, t)
		if st := sc.state; st != nil {
			ts = append(ts, st.table(r.engineLabel(sc.engine)))
		}
	}
	return ts
}

// targets compares the measurements with the targets.
func (r *benchReport) targets() table {
	t := table{title: "The issue's targets (reported, not enforced)", head: []string{"target", "where", "measured", "holds"}}
	add := func(target, where string, v, limit float64, unit string) {
		holds := "yes"
		if v > limit {
			holds = "**no**"
		}
		t.rows = append(t.rows, []string{target, where, fmt.Sprintf("%.2f%s", v, unit), holds})
	}
	for _, sr := range r.starts {
		br := sr.runs[kindBridge].median()
		for _, k := range cniKinds {
			if len(sr.runs[k]) > 0 {
				add("start: docker-cni / bridge ≤ 0.90", sr.engine+", "+k, ratio(sr.runs[k].median(), br), 0.90, "")
			}
		}
	}
	for _, sr := range r.starts {
		for _, m := range []string{"Join", "Leave"} {
			var d durs
			for _, k := range cniKinds {
				d = append(d, overhead(sr.calls(k, "NetworkDriver."+m))...)
			}
			add("overhead p99 ≤ 2 ms", sr.engine+", "+m, ms(d.pct(99)), 2, " ms")
		}
	}
	for _, pr := range r.parallel {
		add(fmt.Sprintf("%d parallel ≤ 1.0× bridge", benchParallel), pr.engine, ratio(pr.start[kindGenerated].median(), pr.start[kindBridge].median()), 1.0, "×")
	}
	for _, sc := range r.scale {
		if len(sc.levels) == 0 {
			continue
		}
		last, first := sc.levels[len(sc.levels)-1], sc.levels[0]
		add(fmt.Sprintf("Join p50 at %d live ≤ 1.1× at %d", last.live, first.live), sc.engine, ratio(took(last.joins).median(), took(first.joins).median()), 1.1, "×")
		add(fmt.Sprintf("RSS at %d live ≤ 40 MiB", last.live), sc.engine, float64(last.rssKiB)/1024, 40, " MiB")
		if st := sc.state; st != nil {
			add(fmt.Sprintf("restart with %d endpoints: serving ≤ 5 s", st.live), sc.engine, st.restart.serve.Seconds(), 5, " s")
			add(fmt.Sprintf("rebuild from nothing, %d endpoints ≤ 10 s", st.live), sc.engine, st.rebuild.settled.Seconds(), 10, " s")
		}
	}
	return t
}

// failureText lists the starts that failed and the requests docker-cni
// failed during the bench.
func (r *benchReport) failureText() string {
	list := func(what string, msgs []string) string {
		if len(msgs) == 0 {
			return "No " + what + ".\n"
		}
		shown := msgs[:min(10, len(msgs))]
		return fmt.Sprintf("%d %s (the first %d):\n\n    %s\n", len(msgs), what, len(shown), strings.Join(oneLine(shown), "\n    "))
	}
	return list("failed starts (docker run; each left out of its timings, or retried during a fill)", r.failedStarts.msgs) + "\n" +
		list("requests docker-cni failed (its log)", r.failures) + "\n" +
		list("engine troubles", r.engineNotes.msgs)
}

// oneLine puts each message on one line.
func oneLine(msgs []string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = strings.Join(strings.Fields(m), " ")
	}
	return out
}

// machine describes the host.
func machine() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	model, mem := "", ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.ParseFloat(f[1], 64)
			mem = fmt.Sprintf(", %.0f GiB", kb/1024/1024)
		}
	}
	return fmt.Sprintf("nproc %d (%s%s), kernel %s", runtime.NumCPU(), model, mem, strings.TrimSpace(string(kernel)))
}

func (r *benchReport) engineLine() string {
	var parts []string
	for _, e := range r.engines {
		parts = append(parts, r.engineLabel(e.name))
	}
	return strings.Join(parts, "; ")
}

func (r *benchReport) text() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n==== docker-cni side by side, %s\nmachine: %s\nengines: %s\n", r.date.UTC().Format(time.RFC3339), machine(), r.engineLine())
	sb.WriteString("the current engine runs with --iptables=false (test/engines/current.sh): its bridge driver writes no rules there\n")
	for _, t := range append(r.tables(), r.targets()) {
		sb.WriteString(t.text())
	}
	fmt.Fprintf(&sb, "\n%s\n", r.failureText())
	return sb.String()
}

func (r *benchReport) markdown() string {
	var sb strings.Builder
	sb.WriteString("# Performance\n\n<!-- Generated by `make bench` (test/e2e/bench_test.go); do not edit, run it again. -->\n\n")
	fmt.Fprintf(&sb, "Generated %s by `make bench`.\n\n", r.date.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sb, "- Machine: %s.\n- Engines: %s. Both drivers run under the same engine settings: on Debian's 20.10 with iptables on "+
		"(Docker's bridge driver writes its rules), on the current engine with iptables off, as the suite starts it "+
		"(`--iptables=false`, see `test/engines/current.sh`: with it on, it would fight 20.10 over the same chains).\n", machine(), r.engineLine())
	sb.WriteString("- docker-cni: the suite's daemon (`test/e2e/daemon_test.go`), debug log on. The generated network is docker-cni's own chain " +
		"(bridge + host-local); the bound one a lean kubelet-style conflist (bridge + host-local, no iptables plugin) in the daemon's conf dir.\n")
	sb.WriteString("- Reproduce, as root on a host `make test` set up: `CI=true flock -o /run/docker-cni-e2e.lock make bench`.\n\n")
	sb.WriteString("![Container start by network kind and engine: median bars, min–max whiskers](performance.png)\n")
	sb.WriteString(r.targets().markdown())
	for _, t := range r.tables() {
		sb.WriteString(t.markdown())
	}
	fmt.Fprintf(&sb, "\n### Failures\n\n%s", r.failureText())
	sb.WriteString("\n### Go benchmarks (translate/, state/, driver's libcni floor)\n\n")
	if len(r.goBench) == 0 {
		sb.WriteString("Not run (`make bench` runs them and passes their output in `BENCH_GO_RESULTS`).\n")
	} else {
		if !slices.ContainsFunc(r.goBench, func(l string) bool { return strings.HasSuffix(l, "/translate") }) {
			sb.WriteString("translate/ has no benchmarks (`go test -bench` over it runs none).\n\n")
		}
		sb.WriteString("```\n" + strings.Join(r.goBench, "\n") + "\n```\n")
	}
	return sb.String()
}
