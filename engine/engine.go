// Package engine asks the Docker engines that use docker-cni whether the
// networks docker-cni remembers still exist (the background reconciler),
// which engine has each (the admin API) and what they are (`docker-cni
// doctor`). A plugin handler must never use it: dockerd may hold locks
// while it waits for the handler.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Liveness is what the engines say of a network.
type Liveness int

const (
	// Unknown: some engine could not be asked.
	Unknown Liveness = iota
	// Alive: some engine has the network.
	Alive
	// Gone: every engine answered and none has it.
	Gone
)

func (l Liveness) String() string {
	return [...]string{"unknown", "alive", "gone"}[l]
}

// Engines is the set of Docker engines docker-cni serves.
type Engines struct {
	hosts   []string
	clients []*client.Client
}

// New returns Engines for the given DOCKER_HOST values.
func New(hosts []string) (*Engines, error) {
	e := &Engines{hosts: hosts}
	for _, h := range hosts {
		c, err := client.NewClientWithOpts(client.WithHost(h), client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("docker host %s: %w", h, err)
		}
		e.clients = append(e.clients, c)
	}
	return e, nil
}

// Hosts lists the engines' addresses.
func (e *Engines) Hosts() []string { return e.hosts }

// NetworkOwners lists the networks of every engine and maps each network ID
// to the engine (its --docker-host address) that has it. An engine that
// does not answer within timeout is left out, and named in the error; the
// others' networks are returned all the same.
func (e *Engines) NetworkOwners(ctx context.Context, timeout time.Duration) (map[string]string, error) {
	owners := map[string]string{}
	var errs []error
	for i, c := range e.clients {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		nws, err := c.NetworkList(cctx, network.ListOptions{})
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("list the networks of %s: %w", e.hosts[i], err))
			continue
		}
		for _, nw := range nws {
			owners[nw.ID] = e.hosts[i]
		}
	}
	return owners, errors.Join(errs...)
}

// Network asks every engine for the network with the given ID.
func (e *Engines) Network(ctx context.Context, id string) (Liveness, error) {
	l, _, err := e.NetworkEndpoints(ctx, id)
	return l, err
}

// NetworkEndpoints asks every engine for the network with the given ID and
// returns the IDs of the endpoints the engine that has it lists (those of
// its running containers).
func (e *Engines) NetworkEndpoints(ctx context.Context, id string) (Liveness, map[string]bool, error) {
	gone := 0
	var firstErr error
	for i, c := range e.clients {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nw, err := c.NetworkInspect(cctx, id, network.InspectOptions{})
		cancel()
		switch {
		case err == nil:
			eps := map[string]bool{}
			for _, r := range nw.Containers {
				eps[r.EndpointID] = true
			}
			return Alive, eps, nil
		case client.IsErrNotFound(err):
			gone++
		case firstErr == nil:
			firstErr = fmt.Errorf("ask %s for network %.12s: %w", e.hosts[i], id, err)
		}
	}
	if gone == len(e.clients) && gone > 0 {
		return Gone, nil, nil
	}
	return Unknown, nil, firstErr
}
