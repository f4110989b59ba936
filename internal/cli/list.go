package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newListCmd(e *env) *cobra.Command {
	var archived bool
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List planned-operation tasks with their lifecycle state",
		Example: `  opsbook list
  opsbook list --archived -o yaml`,
		Long: `List the tasks in ops/active/ (or, with --archived, ops/archive/) with their
date, system, operation, lifecycle state, age, and "archive overdue" for tasks
completed more than 30 days ago (archive them with opsbook archive --due).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := findWorkspace(e)
			if err != nil {
				return badInput("%v", err)
			}
			tasks, err := ws.Tasks(archived, time.Now())
			if err != nil {
				return err
			}
			if output != "text" {
				if tasks == nil {
					return writeData(e.stdout, output, []any{})
				}
				return writeData(e.stdout, output, tasks)
			}
			if len(tasks) == 0 {
				where := "ops/active/"
				if archived {
					where = "ops/archive/"
				}
				fmt.Fprintf(e.stdout, "no tasks in %s; create one with opsbook new \"<description>\"\n", where)
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tDATE\tSYSTEM\tOPERATION\tSTATE\tAGE\tNOTE")
			for _, t := range tasks {
				note := ""
				if t.ArchiveOverdue {
					note = "archive overdue"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Date, t.System, t.Operation, t.State(), t.Age, note)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&archived, "archived", false, "list archived tasks instead of active ones")
	outputFlag(cmd, &output, "text", "json", "yaml").aliases = map[string]string{"table": "text"} // "table" was its old name
	return cmd
}
