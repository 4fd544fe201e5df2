package translate_test

import (
	"encoding/json"
	"testing"

	"github.com/docker-cni/docker-cni/translate"
)

// TestParseNetworkOptions: request.json is the Options object of a
// CreateNetwork request as Docker sends it; the golden is the parsed
// options or the error a user sees.
func TestParseNetworkOptions(t *testing.T) {
	runGolden(t, "options", func(t *testing.T, req []byte) (string, []byte) {
		var opts map[string]any
		if err := json.Unmarshal(req, &opts); err != nil {
			t.Fatalf("request.json: %v", err)
		}
		no, err := translate.ParseNetworkOptions(opts)
		if err != nil {
			return errorGolden(t, err)
		}
		return "want.json", pretty(t, no)
	})
}

// TestCheckBinding: request.json is {pool, net, dockerIPAM} (--ipam-opt
// cni.network, -o cni.network, and whether Docker's IPAM serves the
// network); the golden is the binding or the error.
func TestCheckBinding(t *testing.T) {
	runGolden(t, "binding", func(t *testing.T, req []byte) (string, []byte) {
		var r struct {
			Pool       string `json:"pool"`
			Net        string `json:"net"`
			DockerIPAM bool   `json:"dockerIPAM"`
		}
		decodeStrict(t, req, &r)
		got, err := translate.CheckBinding(r.Pool, r.Net, r.DockerIPAM)
		if err != nil {
			if got != "" {
				t.Errorf("CheckBinding returned binding %q with error %v", got, err)
			}
			return errorGolden(t, err)
		}
		return "want.json", pretty(t, map[string]string{"binding": got})
	})
}
