package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/docker-cni/docker-cni/admin"
	"github.com/docker-cni/docker-cni/state"
)

// readTable reads one state table into v: from the running daemon's admin
// API, or, when no daemon answers there, from the state dir read-only.
func readTable(ctx context.Context, adminSocket, stateDir, table string, v any) error {
	if c, err := net.DialTimeout("unix", adminSocket, time.Second); err == nil {
		c.Close()
		return admin.NewClient(adminSocket).Get(ctx, "/v1/"+table, v)
	}
	list, ok := admin.Tables[table]
	if !ok {
		return fmt.Errorf("no table %q", table)
	}
	store, err := state.OpenReadOnly(stateDir)
	if err != nil {
		return fmt.Errorf("no docker-cni daemon answers on %s, and its state cannot be read: %w", adminSocket, err)
	}
	defer store.Close()
	var out any
	if err := store.View(func(tx *state.Tx) (err error) {
		out, err = list(tx)
		return err
	}); err != nil {
		return err
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// dump prints one state table as JSON, for debugging and tests.
func dump(ctx context.Context, args []string, stdout, stderr ioWriter) error {
	fs := newFlagSet("dump", stderr)
	stateDir, adminSocket := stateFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: docker-cni dump networks|endpoints|pools|reservations")
	}
	var rows []json.RawMessage
	if err := readTable(ctx, *adminSocket, *stateDir, fs.Arg(0), &rows); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if rows == nil {
		rows = []json.RawMessage{}
	}
	return enc.Encode(rows)
}
