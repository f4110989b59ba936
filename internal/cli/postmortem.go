package cli

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/report"
)

func newPostmortemCmd(e *env) *cobra.Command {
	var runID, out, tz, db string
	var force bool
	cmd := &cobra.Command{
		Use:   "postmortem TASK --run ID [-f FILE]",
		Short: "Write a task's postmortem, pre-filled from a run",
		Long: `Write <task>-postmortem.md in the task's folder (or -o FILE, "-" for standard
output), in the task's language, pre-filled from the run's event log:

  timeline            every step start and end, verification, retry, decision,
                      guard breach, rollback, anomaly note (opsbook note) and
                      emergency override, with its time and who
  estimate vs actual  per step and in total
  deviations          skipped and failed steps, retries, operator overrides,
                      the emergency override, rollback, interruptions
  decision points     each Go/No-Go and guided-failure decision, who, why

The sections that need people's words (summary, impact, what went well and
badly, luck, root cause, action items) are left as <<FILL: …>> placeholders,
which opsbook lint reports until they are written. An existing postmortem is
never replaced unless --force.`,
		Example: `  opsbook postmortem 2025-03-01-postgres-upgrade-12-to-15 --run r-01HX…`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runID == "" {
				return badInput("--run ID is required: the postmortem is filled from a run (opsbook status %s lists them)", args[0])
			}
			in, cleanup, err := reportInput(cmd.Context(), e, args[0], runID, db, tz)
			if err != nil {
				return err
			}
			defer cleanup()
			var buf bytes.Buffer
			if err := report.WritePostmortem(&buf, *in); err != nil {
				return fmt.Errorf("render the postmortem: %w", err)
			}
			if out == "" {
				ws, t, err := loadTask(e, args[0])
				if err != nil {
					return err
				}
				out = filepath.Join(ws.Path(t.Rel), t.Name+"-postmortem.md")
			}
			if err := writeOutput(e.stdout, out, buf.Bytes(), force); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(e.stdout, "wrote %s; write the <<FILL: …>> sections, then commit it\n", out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "the run to write up (id or unique prefix)")
	fileFlag(cmd, &out, "file to write (default: <task>-postmortem.md in the task's folder; - for standard output)")
	cmd.Flags().StringVar(&out, "out", "", "old name of --file")
	renamedFlag(e, cmd, "out", "-f/--file")
	cmd.Flags().StringVar(&tz, "tz", "", "time zone of the times shown (IANA name; default: the local one)")
	cmd.Flags().StringVar(&db, "db", "", "run store to read the run from (default: the workspace's .opsbook/*.db)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing postmortem")
	return cmd
}
