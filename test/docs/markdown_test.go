package docs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// prose is md without its fenced code blocks, whose lines are commands and
// output, not links or headings.
func prose(md string) []string {
	var out []string
	fence := ""
	for _, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case fence == "" && (strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~")):
			fence = trimmed[:3]
		case fence != "" && strings.HasPrefix(trimmed, fence):
			fence = ""
		case fence == "":
			out = append(out, line)
		}
	}
	return out
}

var (
	codeSpan = regexp.MustCompile("`[^`]*`")
	// inlineLink is [text](target) or ![alt](target), with an optional
	// title; text may span lines.
	inlineLink = regexp.MustCompile(`\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	heading    = regexp.MustCompile(`^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
)

// links are the targets of md's inline links, outside code.
func links(md string) []string {
	text := strings.Join(prose(md), "\n")
	// Link text may be code (`[`x`](y)`): drop the code, keep the brackets.
	text = codeSpan.ReplaceAllString(text, "")
	var out []string
	for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// anchors are the ids GitHub gives md's headings: lower case, punctuation
// dropped, spaces to hyphens, "-1", "-2" ... after a repeated one.
func anchors(md string) []string {
	var out []string
	seen := map[string]int{}
	for _, line := range prose(md) {
		m := heading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id := slug(m[1])
		if n := seen[id]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", id, n))
		} else {
			out = append(out, id)
		}
		seen[id]++
	}
	return out
}

func slug(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(title) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestLinks(t *testing.T) {
	md := "See [Install](docs/install.md) and [`x`](x.md#a-b), ![plot](p.png).\n" +
		"[a\nwrapped one](y.md \"title\") and [https](https://example.com).\n" +
		"```sh\n[not a link](in-code.md)\n```\n" +
		"`[not a link](in-span.md)`\n"
	got := links(md)
	want := []string{"docs/install.md", "x.md#a-b", "p.png", "y.md", "https://example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("links = %q, want %q", got, want)
	}
}

func TestAnchors(t *testing.T) {
	md := "# docker-cni\n## How CNM maps to CNI\n### `docker-cni doctor`: what it checks\n" +
		"```sh\n# a comment, not a heading\n```\n## Logs\n## Logs\n#not-a-heading\n"
	got := anchors(md)
	want := []string{"docker-cni", "how-cnm-maps-to-cni", "docker-cni-doctor-what-it-checks", "logs", "logs-1"}
	if !slices.Equal(got, want) {
		t.Errorf("anchors = %q, want %q", got, want)
	}
}
