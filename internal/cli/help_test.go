package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// walk calls fn with every command under root that a person may type,
// cobra's generated help and completion commands aside.
func walk(root *cobra.Command, fn func(*cobra.Command)) {
	for _, c := range root.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		fn(c)
		walk(c, fn)
	}
}

// TestEveryCommandHasExamples: --help teaches by example, for every
// command. Fault: a command added without an Example section.
func TestEveryCommandHasExamples(t *testing.T) {
	root := newRootCmd(&env{})
	n := 0
	walk(root, func(c *cobra.Command) {
		n++
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("`%s` has no Example: add one or two typical command lines to its cobra.Command", c.CommandPath())
		}
	})
	if n < 15 {
		t.Fatalf("walked only %d commands", n)
	}
}

// TestFlagConvention keeps one meaning per short flag across commands:
// -o/--output is a format (validated while parsing), -f/--file a file.
// Fault: a command reusing -o for a file (checklist TASK -o json wrote a
// file named json) or -f for a format.
func TestFlagConvention(t *testing.T) {
	walk(newRootCmd(&env{}), func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Hidden { // an old name kept for old command lines
				return
			}
			switch {
			case f.Shorthand == "o" && (f.Name != "output" || f.Value.Type() != "format"):
				t.Errorf("%s: -o is --%s (%s); -o must be --output, a format", c.CommandPath(), f.Name, f.Value.Type())
			case f.Name == "output" && f.Shorthand != "o":
				t.Errorf("%s: --output has no -o", c.CommandPath())
			case f.Shorthand == "f" && f.Name != "file":
				t.Errorf("%s: -f is --%s; -f must be --file, the file written", c.CommandPath(), f.Name)
			case f.Name == "file" && f.Shorthand != "f":
				t.Errorf("%s: --file has no -f", c.CommandPath())
			}
		})
	})
}

// TestOutputAndFileFlags runs the convention's faults through Main: a
// format given to -f, an unknown format, the old spellings.
func TestOutputAndFileFlags(t *testing.T) {
	ws := t.TempDir()
	if code := Main(context.Background(), []string{"init", ws}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Fatalf("init: %d", code)
	}
	cases := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"checklist", "some-task", "-f", "json"}, ExitBadInput, "", "-f/--file is the file to write, not a format: did you mean -o json?"},
		{[]string{"lint", "-f", "sarif"}, ExitBadInput, "", "did you mean -o sarif?"},
		{[]string{"runs", "-o", "xml"}, ExitBadInput, "", `must be text, json or yaml, not "xml"`},
		{[]string{"list", "-o", "table"}, ExitOK, "no tasks", ""},
		{[]string{"list", "-o", "yaml"}, ExitOK, "[]", ""},
		{[]string{"version", "-o", "yaml"}, ExitOK, "version: ", ""},
		{[]string{"--version"}, ExitOK, "opsbook ", ""},
		{[]string{"lint", "--format", "json"}, ExitOK, `"diagnostics"`, "--format is now -o/--output"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(context.Background(), append([]string{"-C", ws}, c.args...), nil, &out, &errb)
			if code != c.code || !strings.Contains(out.String(), c.stdout) || !strings.Contains(errb.String(), c.stderr) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout ∋ %q, stderr ∋ %q", code, c.code, out.String(), errb.String(), c.stdout, c.stderr)
			}
		})
	}
}
