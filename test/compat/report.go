package compat

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Status is a cell's outcome.
type Status string

const (
	// Pass: every step of the scenario did what a user expects (steps that
	// cannot apply to the cell are named in its notes).
	Pass Status = "pass"
	// Partial: the scenario passed, but something the chain set up was not
	// there (a documented limit of docker-cni; the reason says which).
	Partial Status = "partial"
	// Fail: a step that should work did not.
	Fail Status = "fail"
	// Skip: the cell cannot work here or by design (the plugin set does not
	// speak the version and docker-cni refuses it, the kernel lacks the
	// link type, ...); the reason says why.
	Skip Status = "skip"
)

var marks = map[Status]string{Pass: "✅", Partial: "🟡", Fail: "❌", Skip: "⬜"}

// Result is what the scenario found on one cell.
type Result struct {
	Cell   Cell
	Status Status
	// Reason says why the cell is not green.
	Reason string
	// Notes are steps that did not apply, and observations.
	Notes []string
	Took  time.Duration
}

// Report is one run of the matrix.
type Report struct {
	Generated time.Time
	// Versions lists each component and its version, in order.
	Versions [][2]string
	Results  []Result
}

// MaxReason is the length a reason is cut to in the table.
const MaxReason = 220

// Short makes err's text fit a table cell: its first line (a plugin's
// message is the end of a long chain, so the last part of a wrapped error
// is kept), spaces collapsed, at most MaxReason characters.
func Short(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= MaxReason {
		return s
	}
	r := []rune(s)
	return string(r[:MaxReason/2-1]) + " … " + string(r[len(r)-MaxReason/2+2:])
}

// cellText escapes text for a markdown table cell.
func cellText(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Counts counts results by status.
func Counts(rs []Result) map[Status]int {
	n := map[Status]int{}
	for _, r := range rs {
		n[r.Status]++
	}
	return n
}

var sections = []struct{ group, title, intro string }{
	{GroupEngine, "Docker engines", "Docker 20.10 moves the chain's interface in from a scratch namespace (*move* mode); the current engine makes the namespace first (*handover* mode). The `current-*` engines run in a network namespace of their own with their firewall on (test/compat/engine.sh), so each backend is tried as a user runs it."},
	{GroupPlugins, "CNI plugin sets", "The daemon's `--cni-bin-dir` and the CRI runtime's CNI bin dir point at the set."},
	{GroupVersion, "CNI spec versions (the conflist's cniVersion)", "docker-cni asks every plugin of the chain with VERSION at network create and refuses a version one of them does not speak, naming it."},
	{GroupMain, "Main plugins", "Parents (macvlan, ipvlan, vlan) and host devices are veth links the test makes; host-device and static IPAM get one conflist, and Docker network, per container and pod."},
	{GroupIPAM, "IPAM plugins", ""},
	{GroupChained, "Chained plugins (after portmap)", "Each chain is main plugin + portmap (so `-p` is tried everywhere) + the plugin named. What the plugin does is checked where a user would see it: bandwidth's qdisc, firewall's rules, tuning's MTU inside the container, sbr's rule inside the container."},
	{GroupRuntime, "CRI runtimes (the pod side)", "The pod's runtime shares the bound conflist (its own conf dir, the same plugin set) and, for the `current-*` engines, the engine's namespace."},
	{GroupCI, "CI slice", "Run on every change by `make test` (the e2e suite's TestCompat): the Debian engine x both plugin sets x CNI 0.3.1 and 1.0.0 x bridge and macvlan, every product; and the verbs cell, where STATUS, CHECK and GC run against real plugins (CNI 1.1.0 on the current engine, the newest plugins, containerd 2.x)."},
}

// Scenario is the text that says what each cell runs.
const Scenario = `On every cell, as a user would, with the conflist generated for the cell bound by
` + "`docker-cni network create NAME --bind CNI_NETWORK`" + `:

1. the network is created (where the plugin set does not speak the cell's version, docker-cni must
   refuse it naming the plugin: the cell is grey);
2. two containers start, ` + "`docker inspect`" + ` shows the address each has inside, and they ping each other;
3. ` + "`-p`" + `: the first one serves HTTP on a published port, fetched from the engine's host namespace;
4. ` + "`--ip`" + `: a third container gets the address asked for and reaches the first;
5. ` + "`docker network disconnect`" + ` takes its interface and releases its address; ` + "`connect`" + ` gives it one again;
6. the chained plugin's own effect is looked for;
7. a CRI pod (containerd, as kubelet runs it) on the same conflist gets its own address and reaches a
   container, and the container the pod;
8. the CNI verbs beyond ADD and DEL (see *Notes*): after ` + "`docker-cni gc`" + `, STATUS and CHECK were sent
   exactly where the version and the engine have them and every CHECK passed, and no GC went to a
   bound network; bridge cells also run a container on a generated network at the cell's version,
   which is sent GC exactly from 1.1.0 and keeps its network;
9. ` + "`docker rm`" + `, pod removal and ` + "`docker network rm`" + ` release everything: no address left in the
   IPAM store, no docker-cni record, no ` + "`dcni*`" + ` link, no NAT rule of the published port, no qdisc
   or device left by the chain; devices go back to the host.`

// Notes are the facts the table depends on.
const Notes = `- **CNI verbs.** docker-cni sends ADD and DEL (the whole chain at Join and Leave; the IPAM plugin
  alone to reserve and release addresses; portmap alone to publish ports), VERSION (every plugin of
  the chain, at network create), STATUS before each Join's ADD (1.1.0), CHECK of live containers at
  reconcile (0.4.0 and later; where the interface is as the chain left it: not in move mode, so not
  on Debian's 20.10) and GC of generated networks at reconcile (1.1.0; never of a bound network, whose
  plugins keep the pods' attachments). Every cell checks this against its plugins after ` + "`docker-cni gc`" + `:
  STATUS and CHECK sent exactly where the version and the engine have them, every CHECK passing, no GC
  to its bound networks; bridge cells also make a generated network at the cell's version and check
  that GC is sent exactly from 1.1.0 and the container keeps its network.
- **Not every product.** The matrix varies one dimension at a time from the baseline (Debian's engine,
  Debian's plugins, CNI 1.0.0, bridge + host-local + portmap, containerd 1.6), plus the CI slice's full
  product and docker-compose on each engine. A failure that needs two dimensions at once outside the CI
  slice would not show here.
- **Move and handover** drop what a chain set on the interface beyond its address, gateway and routes
  ([Join modes](networks.md#join-modes)): a cell where that shows is yellow, not red.`

// Render writes the report as markdown (docs/compatibility.md).
func Render(r Report) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Compatibility matrix\n\n")
	p("Generated by `make compat` on %s (UTC) from `test/e2e/compat_test.go` and `test/compat/`; do not\n", r.Generated.UTC().Format("2006-01-02 15:04"))
	p("edit by hand. Each cell is one combination of Docker engine, CNI plugin set, CNI spec version, main,\n")
	p("IPAM and chained plugin, and CRI runtime, run through the scenario below.\n\n")

	n := Counts(r.Results)
	p("**%d cells: %s %d pass, %s %d partial, %s %d fail, %s %d cannot run.**\n\n",
		len(r.Results), marks[Pass], n[Pass], marks[Partial], n[Partial], marks[Fail], n[Fail], marks[Skip], n[Skip])
	p("%s the scenario passed (steps that cannot apply are named) · %s it passed, but something the chain set\n", marks[Pass], marks[Partial])
	p("up was lost (a documented limit) · %s a step that should work failed · %s cannot work here, and why\n\n", marks[Fail], marks[Skip])

	p("## Versions\n\n| component | version |\n|---|---|\n")
	for _, v := range r.Versions {
		p("| %s | %s |\n", cellText(v[0]), cellText(v[1]))
	}
	p("\n## Scenario\n\n%s\n\n", Scenario)

	p("## Baseline, then one dimension at a time\n\n")
	p("The baseline is `%s`; each table varies the **bold** column and keeps the rest.\n\n", Baseline.Key())
	for _, s := range sections {
		rs := inGroup(r.Results, s.group)
		if len(rs) == 0 {
			continue
		}
		p("### %s\n\n", s.title)
		if s.intro != "" {
			p("%s\n\n", s.intro)
		}
		p("| engine | plugins | CNI | main | IPAM | chained | CRI runtime | result |\n|---|---|---|---|---|---|---|---|\n")
		for _, res := range rs {
			c := res.Cell
			cols := []string{c.Engine, c.Plugins, c.Version, c.Main, c.IPAM, c.Chained, c.Runtime}
			if i := slices.Index([]string{GroupEngine, GroupPlugins, GroupVersion, GroupMain, GroupIPAM, GroupChained, GroupRuntime}, s.group); i >= 0 {
				cols[i] = "**" + cols[i] + "**"
			}
			p("| %s | %s |\n", strings.Join(cols, " | "), resultText(res))
		}
		p("\n")
	}
	if rs := inGroup(r.Results, GroupCompose); len(rs) > 0 {
		p("### docker-compose\n\n")
		p("`examples/compose` (a generated network, a published port, a client reaching the server by service\nname) with Debian's docker-compose, on each engine.\n\n")
		p("| engine | result |\n|---|---|\n")
		for _, res := range rs {
			p("| %s | %s |\n", res.Cell.Engine, resultText(res))
		}
		p("\n")
	}
	p("## Notes\n\n%s\n", Notes)
	return b.String()
}

func inGroup(rs []Result, g string) []Result {
	var out []Result
	for _, r := range rs {
		if slices.Contains(r.Cell.Groups, g) {
			out = append(out, r)
		}
	}
	return out
}

func resultText(r Result) string {
	parts := []string{marks[r.Status]}
	if r.Reason != "" {
		parts = append(parts, Short(r.Reason))
	}
	for _, n := range r.Notes {
		parts = append(parts, "<br>"+Short(n))
	}
	if r.Status == "" {
		parts = []string{"not run"}
	}
	return cellText(strings.Join(parts, " "))
}
