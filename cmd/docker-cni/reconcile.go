package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/docker-cni/docker-cni/driver"
	"github.com/docker-cni/docker-cni/engine"
	"github.com/docker-cni/docker-cni/ipamdriver"
	"github.com/docker-cni/docker-cni/pools"
	"github.com/docker-cni/docker-cni/server"
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
}

// reconcileMinAge keeps the reconciler off records still being made.
const reconcileMinAge = pools.ClaimWindow

// reconcileLoop makes a pass now and then every interval until ctx ends.
func (dm *daemon) reconcileLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		dm.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile brings docker-cni's state and the host in line with what the
// engines have, and undoes what crashes left: firewall rules, networks and
// endpoints Docker dropped while docker-cni was down, leftover teardowns,
// unfinished reservations, interfaces, scratch netns and store entries no
// record knows; then starts the containers the engines gave up on.
func (dm *daemon) reconcile(ctx context.Context) {
	log := dm.log
	if err := dm.nd.EnsureAll(ctx); err != nil {
		log.Error("restore host firewall rules", "err", err)
	}
	if err := dm.nd.Reconcile(ctx, dm.engines, reconcileMinAge); err != nil {
		log.Error("reconcile with Docker", "hosts", dm.engines.Hosts(), "err", err)
	}
	if _, err := dm.pools.Recover(ctx, server.HandlerTimeout+reconcileMinAge); err != nil {
		log.Error("release unfinished reservations", "err", err)
	}
	if err := dm.nd.Sweep(ctx); err != nil {
		log.Error("sweep interfaces and scratch netns", "err", err)
	}
	if err := dm.pools.SweepStores(ctx, server.HandlerTimeout+reconcileMinAge); err != nil {
		log.Error("sweep IPAM stores", "err", err)
	}
	if !dm.restart {
		return
	}
	if n, err := dm.engines.RestartAbandoned(ctx, dm.driverName, log); err != nil {
		log.Debug("start containers the engines gave up on", "started", n, "err", err)
	}
}
