package translate_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden want.* files under testdata")

// runGolden runs fn over every case directory testdata/<kind>-*: fn gets the
// case's request.json and returns the name of the golden file it produced
// (want.conflist or want.json) and its content. The case must hold exactly
// that golden file with exactly that content; -update rewrites it and removes
// any other want.* file of the case.
func runGolden(t *testing.T, kind string, fn func(t *testing.T, req []byte) (file string, out []byte)) {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", kind+"-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatalf("no golden cases testdata/%s-*", kind)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			req, err := os.ReadFile(filepath.Join(dir, "request.json"))
			if err != nil {
				t.Fatal(err)
			}
			file, got := fn(t, req)
			if !bytes.HasSuffix(got, []byte("\n")) {
				got = append(got, '\n')
			}
			wantPath := filepath.Join(dir, file)
			stale, err := filepath.Glob(filepath.Join(dir, "want.*"))
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				for _, s := range stale {
					if s != wantPath {
						if err := os.Remove(s); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := os.WriteFile(wantPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if !slices.Equal(stale, []string{wantPath}) {
				t.Fatalf("case has golden files %v, the code produced %s (run go test ./translate -update)", stale, file)
			}
			want, err := os.ReadFile(wantPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (run go test ./translate -update to accept)\n%s", wantPath, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the lines of want and got that differ, by position; enough
// for the short pretty-printed goldens here.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
		}
	}
	b.WriteString("--- full got ---\n" + got)
	return b.String()
}

// decodeStrict decodes a request, refusing keys the test does not know so
// that a typo in a request.json cannot silently test nothing.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("request.json: %v", err)
	}
}

// pretty is the golden form of a value: indented JSON with sorted map keys.
func pretty(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("encode golden: %v", err)
	}
	return b
}

// prettyJSON re-indents JSON bytes.
func prettyJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	return out.Bytes()
}

// errorGolden is the golden form of a returned error.
func errorGolden(t *testing.T, err error) (string, []byte) {
	t.Helper()
	return "want.json", pretty(t, struct {
		Error string `json:"error"`
	}{err.Error()})
}
