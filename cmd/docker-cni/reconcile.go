package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/metrics"
	"github.com/docker-cni/docker-cni/observe"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/server"
	"github.com/docker-cni/docker-cni/state"
)

// daemon is what serve wired together.
type daemon struct {
	nd         *driver.Driver
	ipam       *ipamdriver.Driver
	pools      *pools.Authority
	engines    *engine.Engines
	log        *slog.Logger
	driverName string
	restart    bool
	// checkEvery spaces CNI CHECKs of one container in loop passes (0:
	// never).
	checkEvery time.Duration
	// metrics counts calls, plugin execs, passes and what they did; nil
	// counts nothing.
	metrics *metrics.Metrics
	// passMu makes passes (the loop's and those asked for with `docker-cni
	// gc`) run one at a time.
	passMu sync.Mutex
	// rebuilder makes lost records again; while the state started empty
	// (gate) and no rebuild completed, passes wait: a sweep would take
	// the running containers' interfaces and addresses for leftovers.
	rebuilder *rebuilder
	gate      bool
}

// startRebuilder starts rebuilding lost records from the engines, and
// gives the drivers the rebuilder to await. fresh says the state database
// started empty (first start, or lost, or corrupt and moved aside).
func (dm *daemon) startRebuilder(ctx context.Context, fresh bool) {
	dm.rebuilder, dm.gate = newRebuilder(ctx, dm), fresh
	dm.nd.SetRebuilder(dm.rebuilder)
	dm.pools.SetRebuilder(dm.rebuilder)
	go dm.rebuilder.untilSettled()
}

// errRebuilding is a pass refused until the state is rebuilt.
var errRebuilding = errors.New("the state database started empty and is being rebuilt from the engines; " +
	"reconcile passes (and their sweeps) wait until every engine in --docker-host has answered once")

// reconcileObserver counts reconcile passes and actions; package metrics
// implements it.
type reconcileObserver interface {
	observe.Counter
	Pass(trigger string, err error)
}

type nopReconcileObserver struct{ observe.Nop }

func (nopReconcileObserver) Pass(string, error) {}

func (dm *daemon) observer() reconcileObserver {
	if dm.metrics == nil {
		return nopReconcileObserver{}
	}
	return dm.metrics
}

// Triggers of a reconcile pass.
const (
	triggerLoop = "loop"
	triggerGC   = "gc"
)

// reconcileMinAge keeps the reconciler off records still being made.
const reconcileMinAge = pools.ClaimWindow

// reconcileLoop makes a pass now and then every interval until ctx ends.
func (dm *daemon) reconcileLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		dm.pass(ctx, triggerLoop)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gc runs a pass now, for the admin API's POST /v1/gc: after the pass in
// progress, if any.
func (dm *daemon) gc(ctx context.Context) error { return dm.pass(ctx, triggerGC) }

// pass runs one reconcile pass, one at a time, and counts it.
func (dm *daemon) pass(ctx context.Context, trigger string) error {
	if dm.gate && dm.rebuilder != nil && !dm.rebuilder.Settled() {
		dm.log.Info("reconcile pass skipped", "reason", errRebuilding)
		return errRebuilding
	}
	dm.passMu.Lock()
	defer dm.passMu.Unlock()
	err := recovered(dm.log, "reconcile pass", func() error { return dm.reconcile(ctx, trigger) })
	dm.observer().Pass(trigger, err)
	return err
}

// recoverAtStart undoes every reservation the last run left unfinished; no
// request is in flight yet.
func (dm *daemon) recoverAtStart(ctx context.Context) {
	n, err := dm.pools.Recover(ctx, 0)
	dm.count(observe.ReservationUndone, n)
	if err != nil || n > 0 {
		dm.log.Warn("released reservations the last run left unfinished", "count", n, "err", err)
	}
}

func (dm *daemon) count(kind string, n int) {
	for range n {
		dm.observer().Add(kind)
	}
}

// reconcile brings docker-cni's state and the host in line with what the
// engines have, and undoes what crashes left: firewall rules, networks and
// endpoints Docker dropped while docker-cni was down, leftover teardowns,
// unfinished reservations, interfaces, scratch netns and store entries no
// record knows; then starts the containers the engines gave up on, and
// runs CNI CHECK and GC where conflists have them. Every step runs
// whatever the others did; it returns what failed, each logged.
func (dm *daemon) reconcile(ctx context.Context, trigger string) error {
	log := dm.log
	var errs []error
	step := func(what string, err error, attrs ...any) {
		if err != nil {
			log.Error(what, append(attrs, "err", err)...)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	step("restore host firewall rules", dm.nd.EnsureAll(ctx))
	step("reconcile with Docker", dm.nd.Reconcile(ctx, dm.engines, reconcileMinAge), "hosts", dm.engines.Hosts())
	n, err := dm.pools.Recover(ctx, server.HandlerTimeout+reconcileMinAge)
	dm.count(observe.ReservationUndone, n)
	step("release unfinished reservations", err)
	step("sweep interfaces and scratch netns", dm.nd.Sweep(ctx))
	step("sweep IPAM stores", dm.pools.SweepStores(ctx, server.HandlerTimeout+reconcileMinAge))
	if dm.restart {
		// An engine that does not answer is no failure of the pass: it
		// keeps what it has, and is asked again next time.
		n, err := dm.engines.RestartAbandoned(ctx, dm.driverName, log)
		dm.count(observe.ContainerRestarted, n)
		if err != nil {
			log.Debug("start containers the engines gave up on", "started", n, "err", err)
		}
	}
	step("CNI CHECK and GC", dm.nd.Verify(ctx, dm.checkAfter(trigger)))
	return errors.Join(errs...)
}

// checkAfter is how long a container's last CNI CHECK holds in a pass of
// trigger: every loop pass checks those not checked within checkEvery,
// `docker-cni gc` all of them; none when CHECK is turned off.
func (dm *daemon) checkAfter(trigger string) time.Duration {
	switch {
	case dm.checkEvery <= 0:
		return -1
	case trigger == triggerGC:
		return 0
	}
	return dm.checkEvery
}

// reportOpen logs what Open found wrong with the state database: a corrupt
// one moved aside (docker-cni rebuilds its records from the engines, the
// IPAM stores and the CNI cache), or a state dir it cannot write.
func reportOpen(log *slog.Logger, store *state.Store) {
	if aside, why := store.MovedAside(); aside != "" {
		log.Error("state database was corrupt: moved aside, starting on a new one rebuilt from the engines, the IPAM stores and the CNI cache",
			"moved_to", aside, "err", why)
	}
	if why := store.ReadOnly(); why != "" {
		log.Error("state database cannot be written: serving what it holds; requests that must record something fail until it can be written (then restart docker-cni)",
			"err", why)
	}
}

// recovered runs fn, turning a panic (a library that panics on bad input,
// such as bbolt on a page corrupted while docker-cni runs) into an error
// logged with its stack: background work must not take the daemon down.
func recovered(log *slog.Logger, what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error(what+" panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("%s panicked: %v", what, r)
		}
	}()
	return fn()
}
