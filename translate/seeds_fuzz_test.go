package translate_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets of this package are seeded from real inputs: the golden
// requests under testdata/, the example conflists under ../examples/, and
// the requests real engines sent (../shared/traces/, kept by the server
// package's tests as ../server/testdata/*-requests.txt). Each helper fails
// the target when it finds nothing, so that a moved file cannot leave a
// target unseeded.

// seedFiles reads the files matching a glob relative to the package.
func seedFiles(f *testing.F, pattern string) [][]byte {
	f.Helper()
	names, err := filepath.Glob(pattern)
	if err != nil {
		f.Fatal(err)
	}
	if len(names) == 0 {
		f.Fatalf("no seed files %s", pattern)
	}
	var out [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// goldenRequests decodes the request.json of every golden case
// testdata/<kind>-* into a T.
func goldenRequests[T any](f *testing.F, kind string) []T {
	f.Helper()
	var out []T
	for _, b := range seedFiles(f, filepath.Join("testdata", kind+"-*", "request.json")) {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			f.Fatalf("%s-* request.json: %v", kind, err)
		}
		out = append(out, v)
	}
	return out
}

// seedConflists are the conflists the repository holds: the examples, the
// conflists of the bound-, static- and planjoin- golden requests, and the
// generated ones (want.conflist of the generate- cases).
func seedConflists(f *testing.F) [][]byte {
	f.Helper()
	out := seedFiles(f, filepath.Join("..", "examples", "*", "*.conflist"))
	out = append(out, seedFiles(f, filepath.Join("testdata", "generate-*", "want.conflist"))...)
	for _, r := range goldenRequests[struct {
		Conflist     json.RawMessage `json:"conflist"`
		ConflistText string          `json:"conflistText"`
	}](f, "bound") {
		if r.ConflistText != "" {
			out = append(out, []byte(r.ConflistText))
		} else {
			out = append(out, r.Conflist)
		}
	}
	for _, r := range goldenRequests[struct {
		Conflist json.RawMessage `json:"conflist"`
	}](f, "static") {
		out = append(out, r.Conflist)
	}
	for _, r := range goldenRequests[planJoinRequest](f, "planjoin") {
		out = append(out, r.Network.Conflist)
	}
	return out
}

// seedSubnetEnvs are the flannel subnet files of the example and of the
// bound- golden requests.
func seedSubnetEnvs(f *testing.F) []string {
	f.Helper()
	var out []string
	for _, b := range seedFiles(f, filepath.Join("..", "examples", "*", "subnet.env")) {
		out = append(out, string(b))
	}
	for _, r := range goldenRequests[struct {
		SubnetEnv string `json:"subnetEnv"`
	}](f, "bound") {
		if r.SubnetEnv != "" {
			out = append(out, r.SubnetEnv)
		}
	}
	return out
}

// traceOptions returns the Options objects of the requests to method
// (e.g. "NetworkDriver.Join") in the recorded traces, encoded.
func traceOptions(f *testing.F, method string) [][]byte {
	f.Helper()
	var out [][]byte
	for _, trace := range seedFiles(f, filepath.Join("..", "server", "testdata", "*-requests.txt")) {
		sc := bufio.NewScanner(bytes.NewReader(trace))
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			path, body, _ := strings.Cut(strings.TrimPrefix(sc.Text(), ">>> "), " ")
			if path != "/"+method {
				continue
			}
			var req struct{ Options json.RawMessage }
			if err := json.Unmarshal([]byte(body), &req); err != nil {
				f.Fatalf("trace %s body %q: %v", method, body, err)
			}
			if req.Options != nil {
				out = append(out, req.Options)
			}
		}
		if err := sc.Err(); err != nil {
			f.Fatal(err)
		}
	}
	if len(out) == 0 {
		f.Fatalf("no %s request with Options in the traces", method)
	}
	return out
}
