package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/state"
)

// reader reads state tables for the CLI, from the daemon or, when none
// runs, from the state dir, and says once on note (if set) that it read
// the state dir.
type reader struct {
	adminSocket, stateDir string
	note                  io.Writer
	noted                 bool
}

// read reads one table into v and reports whether the daemon answered.
func (r *reader) read(ctx context.Context, table string, v any) (online bool, err error) {
	c := admin.NewClient(r.adminSocket)
	err = c.Ping(ctx)
	var nr *admin.NotRunningError
	switch {
	case err == nil:
		return true, c.Get(ctx, "/v1/"+table, v)
	case !errors.As(err, &nr):
		return false, err
	}
	list, ok := admin.Tables[table]
	if !ok {
		return false, fmt.Errorf("no table %q (networks, endpoints, pools, reservations)", table)
	}
	store, err := state.OpenReadOnly(r.stateDir)
	if err != nil {
		return false, fmt.Errorf("%w; and its state in %s cannot be read: %w", nr, r.stateDir, err)
	}
	defer store.Close()
	if r.note != nil && !r.noted {
		r.noted = true
		fmt.Fprintf(r.note, "docker-cni: no daemon answers on %s; read its state in %s instead\n", r.adminSocket, r.stateDir)
	}
	var out any
	if err := store.View(func(tx *state.Tx) (err error) {
		out, err = list(tx)
		return err
	}); err != nil {
		return false, err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return false, err
	}
	return false, json.Unmarshal(b, v)
}
