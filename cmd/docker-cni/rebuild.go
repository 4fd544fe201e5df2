package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/engine"
)

// Rebuild timing: a call that needs a record the state does not know waits
// at most awaitBound for a rebuild (the engine may be the one waiting for
// the call: dockerd restarts containers at boot before it serves its API);
// a complete rebuild that ended within recentRebuild answers for it.
const (
	awaitBound    = 10 * time.Second
	recentRebuild = 5 * time.Second
)

// rebuilder makes docker-cni's records again from the ground truth when
// they were lost: the networks and running containers the engines list,
// the IPAM stores and libcni's cache (driver.Rebuild). It runs at start
// until every engine has answered once, and again when a call names a
// network, a pool or an endpoint the state does not know. One rebuild runs
// at a time; callers waiting meanwhile share it.
type rebuilder struct {
	engines *engine.Engines
	nd      *driver.Driver
	drivers []string
	plugin  bool
	log     *slog.Logger
	// ctx is the daemon's: a rebuild outlives the call that asked for it.
	ctx context.Context

	mu sync.Mutex
	// running is closed when the rebuild in progress ends (nil: none);
	// ok is whether it completed.
	running chan struct{}
	ok      bool
	// done is when the last complete rebuild ended.
	done    time.Time
	settled chan struct{}
	once    sync.Once
}

var _ driver.Rebuilder = (*rebuilder)(nil)

// processStart is when the daemon process started, for the log of its
// first complete rebuild.
var processStart = time.Now()

func newRebuilder(ctx context.Context, dm *daemon) *rebuilder {
	return &rebuilder{engines: dm.engines, nd: dm.nd, drivers: []string{dm.driverName}, log: dm.log, ctx: ctx,
		plugin: os.Getenv("DOCKER_CNI_MANAGED_PLUGIN") != "", settled: make(chan struct{})}
}

// Settled says a complete rebuild has run since the daemon started.
func (r *rebuilder) Settled() bool {
	select {
	case <-r.settled:
		return true
	default:
		return false
	}
}

// Await runs a rebuild (or joins the one in progress) and waits for it,
// at most awaitBound, and reports whether it completed.
func (r *rebuilder) Await(ctx context.Context) bool {
	r.mu.Lock()
	if time.Since(r.done) < recentRebuild {
		r.mu.Unlock()
		return true
	}
	ch := r.startLocked()
	r.mu.Unlock()
	t := time.NewTimer(awaitBound)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		r.log.WarnContext(ctx, "a rebuild from the engines did not end in time: the call goes on without it", "waited", awaitBound)
		return false
	case <-ctx.Done():
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ok
}

// startLocked starts a rebuild unless one runs, and returns the channel
// closed when it ends. r.mu is held.
func (r *rebuilder) startLocked() chan struct{} {
	if r.running != nil {
		return r.running
	}
	ch := make(chan struct{})
	r.running = ch
	go func() {
		ok := false
		recovered(r.log, "rebuild from the engines", func() error { ok = r.rebuild(); return nil })
		r.mu.Lock()
		r.running, r.ok = nil, ok
		if ok {
			r.done = time.Now()
			r.once.Do(func() { close(r.settled) })
		}
		r.mu.Unlock()
		close(ch)
	}()
	return ch
}

// rebuild asks every engine for docker-cni's networks and makes the
// records docker-cni lacks; it reports whether every engine answered (a
// network that cannot be made again, its conflist gone, is logged: asking
// again would not change that).
func (r *rebuilder) rebuild() bool {
	start := time.Now()
	nws, err := r.engines.Inventory(r.ctx, r.drivers, r.plugin, r.nd.KnownEndpoint)
	n, rerr := r.nd.Rebuild(r.ctx, nws)
	if err == nil {
		r.log.Info("rebuild complete", "took", time.Since(start), "since_start", time.Since(processStart),
			"networks_seen", len(nws), "networks_rebuilt", n.Networks, "endpoints_rebuilt", n.Endpoints)
	}
	if n.Networks > 0 || n.Endpoints > 0 {
		r.log.Warn("rebuilt records docker-cni had lost from the engines, the IPAM stores and the CNI cache",
			"networks", n.Networks, "endpoints", n.Endpoints)
	}
	if rerr != nil {
		r.log.Error("rebuild from the engines", "err", rerr)
	}
	if err != nil {
		r.log.Warn("rebuild from the engines: some engine did not answer; asked again soon", "err", err)
	}
	return err == nil
}

// untilSettled rebuilds at start, and again, backing off, until a rebuild
// completes (every engine answered) or ctx ends.
func (r *rebuilder) untilSettled() {
	wait := 2 * time.Second
	for {
		r.mu.Lock()
		ch := r.startLocked()
		r.mu.Unlock()
		<-ch
		if r.Settled() {
			return
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
