package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// GaveUp reports whether an engine gave up starting a container because
// the driver's plugin was missing: it has a restart policy (it was meant to
// run) and its start failed with the plugin not found. Pure.
func GaveUp(policy container.RestartPolicyMode, stateErr, driver string) bool {
	switch policy {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped, container.RestartPolicyOnFailure:
	default:
		return false
	}
	return strings.Contains(stateErr, fmt.Sprintf("plugin %q not found", driver))
}

// RestartAbandoned starts the containers the engines gave up on because
// docker-cni was not there when they started them (at boot, docker-cni
// coming up after dockerd), and returns how many it started. A container a
// user stopped is left alone: its stop leaves no such error.
func (e *Engines) RestartAbandoned(ctx context.Context, driver string, log *slog.Logger) (int, error) {
	n := 0
	for i, c := range e.clients {
		started, err := restartOn(ctx, c, driver, log.With("docker_host", e.hosts[i]))
		n += started
		if err != nil {
			return n, fmt.Errorf("docker host %s: %w", e.hosts[i], err)
		}
	}
	return n, nil
}

func restartOn(ctx context.Context, c *client.Client, driver string, log *slog.Logger) (int, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := c.ContainerList(lctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("status", "exited"))})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range cs {
		info, err := c.ContainerInspect(lctx, s.ID)
		if err != nil || info.State == nil || info.HostConfig == nil ||
			!GaveUp(info.HostConfig.RestartPolicy.Name, info.State.Error, driver) {
			continue
		}
		log.Info("starting a container the engine gave up on while docker-cni was down", "container", strings.TrimPrefix(info.Name, "/"), "error", info.State.Error)
		if err := c.ContainerStart(lctx, s.ID, container.StartOptions{}); err != nil {
			log.Warn("start container", "container", strings.TrimPrefix(info.Name, "/"), "err", err)
			continue
		}
		n++
	}
	return n, nil
}
