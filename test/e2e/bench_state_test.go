package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTiming is one start of the daemon: until it serves the plugin
// socket, and until its first complete rebuild (as it logs it), with how
// many endpoint records that rebuild made.
type startTiming struct {
	serve, settled time.Duration
	rebuilt        int
}

// stateResult is the daemon's restart with its database, and its start
// after the database was deleted, at live endpoints.
type stateResult struct {
	live             int
	restart, rebuild startTiming
	rssKiB           int64
}

// benchStateLoss restarts the daemon with live endpoints (open, reconcile,
// rebuild: nothing to make), then deletes its database and starts it
// again (every network and endpoint rebuilt from the engines, the IPAM
// stores and the CNI cache).
func benchStateLoss(b *testing.B, live int, notes *noteLog) *stateResult {
	res := &stateResult{live: live}
	res.restart = benchDaemonStart(b, nil)
	res.rebuild = benchDaemonStart(b, func() {
		if err := os.Remove(filepath.Join(s.d.stateDir, "state.db")); err != nil {
			b.Fatal(err)
		}
	})
	res.rssKiB = benchRSS(b)
	if res.rebuild.rebuilt < live {
		notes.add(b, "the rebuild from nothing made %d endpoint records, with %d live", res.rebuild.rebuilt, live)
	}
	b.ReportMetric(res.restart.serve.Seconds(), fmt.Sprintf("restart-serve-s-at-%d", live))
	b.ReportMetric(res.rebuild.settled.Seconds(), fmt.Sprintf("rebuild-s-at-%d", live))
	return res
}

// rebuildLine is the daemon's log of a complete rebuild.
var rebuildLine = regexp.MustCompile(`msg="rebuild complete".* since_start=([0-9.]+[a-zµ]+).* endpoints_rebuilt=([0-9]+)`)

// benchDaemonStart stops the daemon, does between (if any), starts it and
// times it.
func benchDaemonStart(b *testing.B, between func()) startTiming {
	s.d.stop()
	if between != nil {
		between()
	}
	off := logSize(b)
	t0 := time.Now()
	if err := s.d.start(); err != nil {
		b.Fatal(err)
	}
	st := startTiming{serve: time.Since(t0)}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if m := rebuildLine.FindStringSubmatch(logTail(b, off)); m != nil {
			st.settled, _ = time.ParseDuration(m[1])
			st.rebuilt, _ = strconv.Atoi(m[2])
			return st
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatalf("the daemon logged no complete rebuild within 2 minutes of its start")
	return st
}

// logTail is the daemon's log from offset off.
func logTail(b testing.TB, off int64) string {
	data, err := os.ReadFile(s.d.log.Name())
	if err != nil {
		b.Fatal(err)
	}
	if off > int64(len(data)) {
		return ""
	}
	return string(data[off:])
}

// benchGC times `docker-cni gc`: a reconcile pass, CHECKing every
// container where CHECK applies.
func benchGC(b testing.TB, notes *noteLog) time.Duration {
	t0 := time.Now()
	out, err := s.d.cli("gc", "--timeout", "10m")
	took := time.Since(t0)
	if err != nil {
		notes.add(b, "docker-cni gc failed: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return took
}

// table is the restart and rebuild measurements of one engine.
func (st *stateResult) table(engine string) table {
	sec := func(d time.Duration) string { return fmt.Sprintf("%.2f", d.Seconds()) }
	return table{title: fmt.Sprintf("The daemon's start with %d live endpoints (%s)", st.live, engine),
		head: []string{"start", "serving after s", "first complete rebuild after s", "endpoint records rebuilt"},
		rows: [][]string{
			{"restart (database kept: open, reconcile, rebuild finds nothing to make)", sec(st.restart.serve), sec(st.restart.settled), strconv.Itoa(st.restart.rebuilt)},
			{"rebuild from nothing (state.db deleted; the CNI cache kept)", sec(st.rebuild.serve), sec(st.rebuild.settled), strconv.Itoa(st.rebuild.rebuilt)},
		},
		note: fmt.Sprintf("Serving: from exec until the plugin socket answers (polled every 100 ms). Rebuild: the daemon's own log of its first complete rebuild, since the process started. VmRSS after the rebuild: %.1f MiB.", float64(st.rssKiB)/1024)}
}
