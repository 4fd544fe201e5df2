package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
)

// Description is what an engine says of itself, for `docker-cni doctor`.
type Description struct {
	Host                string
	Version, APIVersion string
	// Networks counts its networks of the driver; NetworkPlugins are its
	// enabled managed plugins that are network drivers.
	Networks       int
	NetworkPlugins []string
	// Err is why it did not answer.
	Err error
}

// Describe asks every engine its version, its networks of driver and its
// managed network plugins, each within timeout. It changes nothing.
func (e *Engines) Describe(ctx context.Context, driver string, timeout time.Duration) []Description {
	var out []Description
	for i, c := range e.clients {
		d := Description{Host: e.hosts[i]}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		d.Err = describe(cctx, c, driver, &d)
		cancel()
		out = append(out, d)
	}
	return out
}

type describer interface {
	ServerVersion(ctx context.Context) (types.Version, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	PluginList(ctx context.Context, filter filters.Args) (types.PluginsListResponse, error)
}

func describe(ctx context.Context, c describer, driver string, d *Description) error {
	v, err := c.ServerVersion(ctx)
	if err != nil {
		return err
	}
	d.Version, d.APIVersion = v.Version, v.APIVersion
	nws, err := c.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("driver", driver))})
	if err != nil {
		return fmt.Errorf("list networks: %w", err)
	}
	d.Networks = len(nws)
	ps, err := c.PluginList(ctx, filters.NewArgs(filters.Arg("enabled", "true"), filters.Arg("capability", "networkdriver")))
	if err != nil {
		return fmt.Errorf("list plugins: %w", err)
	}
	for _, p := range ps {
		d.NetworkPlugins = append(d.NetworkPlugins, p.Name)
	}
	return nil
}
