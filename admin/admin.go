// Package admin serves docker-cni's own API on a unix socket of its own
// (never Docker's plugin socket): health, and read-only views of the state
// (networks, endpoints, pools, reservations) for the CLI. It must not change
// state or run plugins.
package admin

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/docker-cni/docker-cni/state"
)

// Tables are the state tables the API lists, by name.
var Tables = map[string]func(*state.Tx) (any, error){
	"networks":     func(tx *state.Tx) (any, error) { return tx.Networks() },
	"endpoints":    func(tx *state.Tx) (any, error) { return tx.Endpoints() },
	"pools":        func(tx *state.Tx) (any, error) { return tx.Pools() },
	"reservations": func(tx *state.Tx) (any, error) { return tx.Reservations() },
}

// New returns the admin API's handler over store.
func New(store *state.Store, log *slog.Logger) http.Handler {
	r := mux.NewRouter()
	r.Methods(http.MethodGet).Path("/healthz").HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Methods(http.MethodGet).Path("/v1/{table}").HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		name := mux.Vars(req)["table"]
		list, ok := Tables[name]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("no table %q", name)})
			return
		}
		var out any
		if err := store.View(func(tx *state.Tx) (err error) {
			out, err = list(tx)
			return err
		}); err != nil {
			log.ErrorContext(req.Context(), "admin: list state", "table", name, "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
	return r
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
