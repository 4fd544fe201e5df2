package engine

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// Container is what docker-cni knows of a container from the engines.
type Container struct {
	ID     string
	Name   string
	Labels map[string]string
}

// Watch keeps a cache of the engines' containers, by name, from a listing
// at start and the engines' container events afterwards. Join reads the
// cache without waiting: the Docker API is only ever called here, in the
// background.
type Watch struct {
	mu     sync.RWMutex
	byName map[string]Container
	// onEndpoint, when set, learns which container each endpoint ID
	// belongs to, as the engines report it once the container runs.
	onEndpoint func(endpointID, containerID, name string)
}

// Lookup returns the cached container of that name.
func (w *Watch) Lookup(name string) (Container, bool) {
	if w == nil {
		return Container{}, false
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	c, ok := w.byName[strings.TrimPrefix(name, "/")]
	return c, ok
}

// FromEvent is a container as its create event describes it: the event's
// attributes are its labels plus "name" and "image". Pure.
func FromEvent(id string, attrs map[string]string) Container {
	c := Container{ID: id, Name: strings.TrimPrefix(attrs["name"], "/"), Labels: map[string]string{}}
	for k, v := range attrs {
		if k != "name" && k != "image" {
			c.Labels[k] = v
		}
	}
	return c
}

func (w *Watch) put(c Container) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for n, old := range w.byName {
		if old.ID == c.ID {
			delete(w.byName, n)
		}
	}
	w.byName[c.Name] = c
}

func (w *Watch) drop(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for n, c := range w.byName {
		if c.ID == id {
			delete(w.byName, n)
		}
	}
}

// Watch starts watching every engine until ctx ends; an engine that is
// down is retried.
func (e *Engines) Watch(ctx context.Context, log *slog.Logger, onEndpoint func(endpointID, containerID, name string)) *Watch {
	w := &Watch{byName: map[string]Container{}, onEndpoint: onEndpoint}
	for i, c := range e.clients {
		go w.follow(ctx, log.With("docker_host", e.hosts[i]), c)
	}
	return w
}

func (w *Watch) follow(ctx context.Context, log *slog.Logger, c *client.Client) {
	for ctx.Err() == nil {
		err := w.followOnce(ctx, c)
		if ctx.Err() != nil {
			return
		}
		log.Debug("container events stream ended; retrying", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

func (w *Watch) refresh(ctx context.Context, c *client.Client, id string) error {
	opts := container.ListOptions{All: true}
	if id != "" {
		opts.Filters = filters.NewArgs(filters.Arg("id", id))
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cs, err := c.ContainerList(lctx, opts)
	if err != nil {
		return err
	}
	for _, s := range cs {
		if len(s.Names) == 0 {
			continue
		}
		name := strings.TrimPrefix(s.Names[0], "/")
		w.put(Container{ID: s.ID, Name: name, Labels: s.Labels})
		if w.onEndpoint != nil && s.NetworkSettings != nil {
			for _, n := range s.NetworkSettings.Networks {
				if n != nil && n.EndpointID != "" {
					w.onEndpoint(n.EndpointID, s.ID, name)
				}
			}
		}
	}
	return nil
}

func (w *Watch) followOnce(ctx context.Context, c *client.Client) error {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := c.Events(ectx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)), filters.Arg("type", string(events.NetworkEventType)))})
	if err := w.refresh(ctx, c, ""); err != nil {
		return err
	}
	for {
		select {
		case m := <-msgs:
			switch {
			case m.Type == events.NetworkEventType && m.Action == events.ActionConnect:
				w.refresh(ctx, c, m.Actor.Attributes["container"])
			case m.Type != events.ContainerEventType:
			case m.Action == events.ActionCreate:
				// The event carries the name and the labels: the cache
				// has them before the container starts, without a call.
				w.put(FromEvent(m.Actor.ID, m.Actor.Attributes))
			case m.Action == events.ActionRename || m.Action == events.ActionStart:
				w.refresh(ctx, c, m.Actor.ID)
			case m.Action == events.ActionDestroy:
				w.drop(m.Actor.ID)
			}
		case err := <-errs:
			return err
		}
	}
}
