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
func (e *Engines) Watch(ctx context.Context, log *slog.Logger) *Watch {
	w := &Watch{byName: map[string]Container{}}
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
		w.put(Container{ID: s.ID, Name: strings.TrimPrefix(s.Names[0], "/"), Labels: s.Labels})
	}
	return nil
}

func (w *Watch) followOnce(ctx context.Context, c *client.Client) error {
	ectx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, errs := c.Events(ectx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("type", "container"))})
	if err := w.refresh(ctx, c, ""); err != nil {
		return err
	}
	for {
		select {
		case m := <-msgs:
			switch m.Action {
			case events.ActionCreate, events.ActionRename:
				w.refresh(ctx, c, m.Actor.ID)
			case events.ActionDestroy:
				w.drop(m.Actor.ID)
			}
		case err := <-errs:
			return err
		}
	}
}
