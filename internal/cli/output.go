package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// One flag convention for every command: -o/--output is the FORMAT of what
// a command prints (text, json, yaml, or a document format such as md or
// html), -f/--file is the FILE a command writes instead of standard output.

// formatValue is an --output value restricted to a command's formats, so a
// wrong one is refused while parsing, before anything runs.
type formatValue struct {
	p       *string
	formats []string
	aliases map[string]string // accepted for compatibility, e.g. list's old "table"
}

func (v *formatValue) String() string { return *v.p }
func (v *formatValue) Type() string   { return "format" }

func (v *formatValue) Set(s string) error {
	if a, ok := v.aliases[s]; ok {
		s = a
	}
	if !slices.Contains(v.formats, s) {
		return fmt.Errorf("must be %s, not %q (-o/--output is the format; write to a file with -f/--file)", orList(v.formats), s)
	}
	*v.p = s
	return nil
}

// orList renders a, b or c.
func orList(l []string) string {
	if len(l) == 1 {
		return l[0]
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}

// outputFlag adds -o/--output with the command's formats, the first being
// the default, and completes them.
func outputFlag(cmd *cobra.Command, p *string, formats ...string) *formatValue {
	*p = formats[0]
	v := &formatValue{p: p, formats: formats}
	cmd.Flags().VarP(v, "output", "o", "output format: "+orList(formats))
	cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
	return v
}

// fileFlag adds -f/--file, the file a command writes instead of standard
// output. A value that is a format name is refused: that is what -o
// means, and writing a file named "json" helps nobody.
func fileFlag(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVarP(p, "file", "f", "", usage)
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if slices.Contains(formatNames, *p) {
			return badInput("-f/--file is the file to write, not a format: did you mean -o %s?", *p)
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// renamedFlag hides a flag kept for old command lines and, when it is
// used, says its new name on standard error (cobra's own deprecation notice
// goes to standard output, into the JSON a script reads).
func renamedFlag(e *env, cmd *cobra.Command, old, now string) {
	cmd.Flags().MarkHidden(old)
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if c.Flags().Changed(old) {
			fmt.Fprintf(e.stderr, "opsbook: --%s is now %s\n", old, now)
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// formatNames are every format any command prints.
var formatNames = []string{"text", "json", "yaml", "md", "html", "sarif", "table"}

// writeData writes v as JSON (indented) or YAML; the YAML has the JSON's
// field names and order, since the types carry json tags only.
func writeData(w io.Writer, format string, v any) error {
	if format != "yaml" {
		return writeJSON(w, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return err
	}
	blockStyle(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// blockStyle drops the flow style and quoting a JSON document parses
// into; the encoder quotes what needs it.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}
