package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lint"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newLintCmd(e *env) *cobra.Command {
	var (
		format  string
		file    string
		noShell bool
		vars    []string
	)
	cmd := &cobra.Command{
		Use:   "lint [PATH...]",
		Short: "Check runbooks, rollback plans, checklists and postmortems for mistakes",
		Long: `Check documents against the runbook format (docs/runbook-format.md) and print
every problem as file:line:col: error|warning: message, with what to do.

PATH is a file or a directory; directories are searched for *.md files whose
front matter has a kind: key. Without PATH, lint checks the workspace's ops/
directory (the workspace is the nearest parent directory with opsbook.yaml,
else the current directory). Variables of every environment in opsbook.yaml
count as known to commands.

Exit status: 0 when there are no errors (warnings allowed), 1 when there is
at least one error, 2 on bad usage.`,
		Example: `  opsbook lint
  opsbook lint ops/active/2025-05-01-pg-upgrade/
  opsbook lint -o sarif -f opsbook.sarif     # for GitHub code scanning
  opsbook lint -o json runbook.md | jq '.diagnostics[] | select(.severity == "error")'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := lint.Options{Shell: !noShell, KnownVars: vars}
			base := "."
			ws, wsErr := findWorkspace(e)
			if wsErr != nil && !errors.Is(wsErr, workspace.ErrNoWorkspace) {
				// Documents can still be linted; only workspace variables are unknown.
				fmt.Fprintf(e.stderr, "opsbook: warning: %v; linting without the workspace's variables\n", wsErr)
			}
			if ws != nil {
				base = ws.Dir
				for _, name := range ws.EnvironmentNames() {
					env, err := ws.Environment(name)
					if err != nil {
						continue
					}
					for v := range env.Variables {
						if !slices.Contains(opts.KnownVars, v) {
							opts.KnownVars = append(opts.KnownVars, v)
						}
					}
				}
			}
			paths := args
			if len(paths) == 0 {
				root := e.workspace
				if ws != nil {
					root = ws.Dir
				} else if root == "" {
					root = "."
				}
				ops := filepath.Join(root, workspace.OpsDir)
				if _, err := os.Stat(ops); err != nil {
					return badInput("no %s directory in %s: pass the files or directories to lint, or run `opsbook init` to create a workspace", workspace.OpsDir, root)
				}
				paths = []string{ops}
			}
			diags, err := lint.Paths(paths, opts)
			if err != nil {
				return badInput("%v", err)
			}
			var report bytes.Buffer
			switch format {
			case "json":
				err = lint.WriteJSON(&report, diags)
			case "sarif":
				err = lint.WriteSARIF(&report, diags, base, Version)
			default:
				err = lint.WriteText(&report, diags)
			}
			if err == nil {
				err = writeOutput(e.stdout, file, report.Bytes(), true)
			}
			if err == nil && format == "text" {
				printSummary(e, diags)
			}
			if err != nil {
				return fmt.Errorf("write lint report: %w", err)
			}
			if runbook.HasErrors(diags) {
				return &ExitError{Code: ExitFailed}
			}
			return nil
		},
	}
	formats := outputFlag(cmd, &format, "text", "json", "sarif") // sarif: SARIF 2.1.0, for code scanning
	fileFlag(cmd, &file, "write the report to FILE instead of standard output")
	cmd.Flags().Var(formats, "format", "output format (old name of --output)")
	renamedFlag(e, cmd, "format", "-o/--output")
	cmd.Flags().BoolVar(&noShell, "no-shell", false, "skip the bash -n / sh -n syntax check of command blocks")
	cmd.Flags().StringArrayVar(&vars, "var", nil, "a variable name commands may use besides params and outputs (repeatable)")
	return cmd
}

// findWorkspace locates the workspace from --workspace or the current directory.
func findWorkspace(e *env) (*workspace.Workspace, error) {
	if e.workspace != "" {
		return workspace.Load(e.workspace)
	}
	return workspace.Find(".")
}

func printSummary(e *env, diags []runbook.Diagnostic) {
	var errs, warns int
	for _, d := range diags {
		if d.Severity == runbook.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if errs+warns > 0 {
		fmt.Fprintf(e.stderr, "%d error(s), %d warning(s)\n", errs, warns)
	}
}
