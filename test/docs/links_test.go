// Package docs checks the project's documentation as a reader follows it:
// every relative link between README.md, docs/*.md and examples/*/README.md
// leads to a file that exists and, where it names one, to a heading that
// exists. It needs neither root nor an engine.
package docs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// repo is the repository root, from this package's directory.
const repo = "../.."

// maxReadmeLines is how long the README may grow: it says what docker-cni
// is and links the pages that say the rest.
const maxReadmeLines = 150

// pages are the markdown files whose links are checked, relative to repo.
func pages(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"README.md", "docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repo, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range m {
			rel, err := filepath.Rel(repo, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rel)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found only %v: run from test/docs", out)
	}
	return out
}

func TestRelativeLinksResolve(t *testing.T) {
	anchorCache := map[string][]string{}
	for _, page := range pages(t) {
		b, err := os.ReadFile(filepath.Join(repo, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(b)) {
			if err := resolve(page, l, anchorCache); err != "" {
				t.Errorf("%s: link %q: %s", page, l, err)
			}
		}
	}
}

// resolve checks one link of page; it returns what is wrong, or "".
func resolve(page, link string, anchorCache map[string][]string) string {
	if isExternal(link) {
		return ""
	}
	target, anchor, _ := strings.Cut(link, "#")
	file := page
	if target != "" {
		file = filepath.Join(filepath.Dir(page), target)
	}
	st, err := os.Stat(filepath.Join(repo, file))
	if err != nil {
		return "no such file " + file
	}
	if anchor == "" {
		return ""
	}
	if st.IsDir() || !strings.HasSuffix(file, ".md") {
		return "an anchor into " + file + ", which is not a markdown page"
	}
	ids, ok := anchorCache[file]
	if !ok {
		b, err := os.ReadFile(filepath.Join(repo, file))
		if err != nil {
			return err.Error()
		}
		ids = anchors(string(b))
		anchorCache[file] = ids
	}
	if !slices.Contains(ids, anchor) {
		return "no heading with anchor #" + anchor + " in " + file
	}
	return ""
}

func isExternal(link string) bool {
	for _, p := range []string{"http://", "https://", "mailto:"} {
		if strings.HasPrefix(link, p) {
			return true
		}
	}
	return false
}

func TestReadmeIsShortAndLinksEveryPage(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	if n := strings.Count(readme, "\n"); n > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail into a docs/ page and link it", n, maxReadmeLines)
	}
	linked := map[string]bool{}
	for _, l := range links(readme) {
		target, _, _ := strings.Cut(l, "#")
		linked[filepath.Clean(target)] = true
	}
	docs, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		rel := filepath.Join("docs", filepath.Base(d))
		if !linked[rel] {
			t.Errorf("README.md does not link %s: a page no one can find", rel)
		}
	}
}
