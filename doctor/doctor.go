// Package doctor decides, from facts gathered on a node, what works for
// docker-cni there and why not: the daemon, each engine (version, the join
// mode its containers get, whether it finds the driver), the kernel and
// firewall premises, the CNI plugins, every conflist of the conf dir
// (bindable or not, how, the exact command or the reason it is refused) and
// each docker-cni network's health. It is pure: the facts are gathered
// elsewhere (cmd/docker-cni's doctor probes), and the binding rules are
// translate's and the driver's own, whose results the facts carry. It runs
// nothing and changes nothing.
package doctor

import (
	"fmt"
	"strings"
)

// Status is how a check came out.
type Status string

const (
	// OK: works.
	OK Status = "ok"
	// Info: a fact worth knowing, nothing wrong.
	Info Status = "info"
	// Warn: something does not work, but docker-cni does (a conflist it
	// cannot bind, a leftover being retried).
	Warn Status = "warn"
	// Fail: something blocks docker-cni, or a network of it.
	Fail Status = "fail"
)

// Areas of checks, in the order they are printed.
const (
	AreaDaemon   = "daemon"
	AreaEngine   = "engine"
	AreaHost     = "host"
	AreaPlugins  = "plugins"
	AreaConflist = "conflist"
	AreaNetwork  = "network"
)

// Check is one verdict.
type Check struct {
	Area string
	// Subject is what was checked: a socket, an engine's address, a file,
	// a network.
	Subject string
	Status  Status
	// Summary says what works or what is wrong, in one line.
	Summary string
	// Details are further facts, one line each.
	Details []string `json:",omitempty"`
	// Fix is what to do: the command to run, or what to change.
	Fix string `json:",omitempty"`
}

// Report is every check of a node.
type Report struct {
	Checks []Check
	// Failed counts the checks that block docker-cni.
	Failed int
	// Warnings counts the others that found something not working.
	Warnings int
}

// NewReport gathers the checks of each area.
func NewReport(areas ...[]Check) Report {
	var r Report
	for _, a := range areas {
		for _, c := range a {
			r.Checks = append(r.Checks, c)
			switch c.Status {
			case Fail:
				r.Failed++
			case Warn:
				r.Warnings++
			}
		}
	}
	return r
}

// Err is nil when nothing blocks docker-cni, else names what does.
func (r Report) Err() error {
	if r.Failed == 0 {
		return nil
	}
	var what []string
	for _, c := range r.Checks {
		if c.Status == Fail {
			what = append(what, c.Area+" "+c.Subject)
		}
	}
	return fmt.Errorf("doctor: %d check(s) failed: %s", r.Failed, strings.Join(what, ", "))
}

func check(area, subject string, st Status, summary string) Check {
	return Check{Area: area, Subject: subject, Status: st, Summary: summary}
}
