package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newArchiveCmd(e *env) *cobra.Command {
	var due, force, noGit bool
	var output string
	cmd := &cobra.Command{
		Use:   "archive <task> | --due",
		Short: "Move a completed task to ops/archive/YYYY/MM/",
		Long: `Move a completed task from ops/active/ to ops/archive/YYYY/MM/<task>/ by its
completion date, and record it in the task's lifecycle.jsonl. Inside a git
repository a tracked task is moved with git mv; otherwise it is copied, synced,
renamed into place and only then removed, so an interruption never loses or
half-moves it (run the command again to finish).

--due archives every task completed more than 30 days ago. A task that is not
completed is refused unless --force is given.`,
		Example: `  opsbook archive 2025-03-01-postgres-upgrade-v12-to-v15
  opsbook archive --due`,
		Args: func(cmd *cobra.Command, args []string) error {
			if due && len(args) > 0 || !due && len(args) != 1 {
				return fmt.Errorf("give one task name, or --due")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := findWorkspace(e)
			if err != nil {
				return badInput("%v", err)
			}
			opts := workspace.ArchiveOptions{Force: force, NoGit: noGit, Actor: lifecycle.Actor(ws.Dir)}
			var results []*workspace.ArchiveResult
			if due {
				results, err = ws.ArchiveDue(opts)
			} else {
				var res *workspace.ArchiveResult
				res, err = ws.Archive(args[0], opts)
				if res != nil {
					results = append(results, res)
				}
			}
			if output != "text" {
				if results == nil {
					results = []*workspace.ArchiveResult{}
				}
				if encErr := writeData(e.stdout, output, results); encErr != nil {
					return encErr
				}
			} else {
				for _, r := range results {
					switch {
					case r.Already:
						fmt.Fprintf(e.stdout, "%s is already archived in %s\n", r.Task, r.To)
					default:
						forced := ""
						if r.Forced {
							forced = " (forced: not completed)"
						}
						fmt.Fprintf(e.stdout, "archived %s → %s (%s)%s\n", r.Task, r.To, r.Method, forced)
					}
				}
				if due && len(results) == 0 && err == nil {
					fmt.Fprintln(e.stdout, "no task is due for archiving")
				}
			}
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: err}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&due, "due", false, "archive every task completed more than 30 days ago")
	cmd.Flags().BoolVar(&force, "force", false, "archive a task that is not completed")
	cmd.Flags().BoolVar(&noGit, "no-git", false, "move the files without git mv even inside a repository")
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}
