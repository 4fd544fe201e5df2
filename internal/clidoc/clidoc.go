// Package clidoc writes what a command tree says of itself for the system
// it is installed on: a man page per command (section 1) and the bash, zsh
// and fish completion scripts, all generated from the cobra commands, so
// they never drift from the flags. It writes files only; it does not
// install them, and it runs nothing.
package clidoc

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// Completion scripts, by shell: the file name under dir/completions and
// its generator. The names are the ones each shell looks up for a command
// called docker-cni (bash-completion: the command's name; zsh: _ and the
// name; fish: the name and .fish).
var completions = []struct {
	shell, file string
	gen         func(root *cobra.Command, w *bytes.Buffer) error
}{
	{"bash", "%s.bash", func(r *cobra.Command, w *bytes.Buffer) error { return r.GenBashCompletionV2(w, true) }},
	{"zsh", "_%s", func(r *cobra.Command, w *bytes.Buffer) error { return r.GenZshCompletion(w) }},
	{"fish", "%s.fish", func(r *cobra.Command, w *bytes.Buffer) error { return r.GenFishCompletion(w, true) }},
}

// Write writes dir/man/man1/<command path>.1 for every command of root and
// dir/completions/{<name>.bash,_<name>,<name>.fish}. The man pages are
// dated by $SOURCE_DATE_EPOCH when set (reproducible builds), else today.
func Write(root *cobra.Command, dir, source string) error {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	root.DisableAutoGenTag = true
	man := filepath.Join(dir, "man", "man1")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{Title: root.Name(), Section: "1", Source: source, Manual: root.Name() + " manual"}
	if err := doc.GenManTree(root, header, man); err != nil {
		return fmt.Errorf("write man pages to %s: %w", man, err)
	}
	comp := filepath.Join(dir, "completions")
	if err := os.MkdirAll(comp, 0o755); err != nil {
		return err
	}
	for _, c := range completions {
		var b bytes.Buffer
		if err := c.gen(root, &b); err != nil {
			return fmt.Errorf("generate the %s completion: %w", c.shell, err)
		}
		path := filepath.Join(comp, fmt.Sprintf(c.file, root.Name()))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write the %s completion: %w", c.shell, err)
		}
	}
	return nil
}
