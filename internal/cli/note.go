package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

func newNoteCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "note RUN TEXT",
		Short: "Record an anomaly on a run (it appears in the postmortem's timeline)",
		Long: `Note appends an anomaly.noted event, with you as its author, to a run's
log — while it runs (from another terminal) or after it finished.`,
		Example: `  opsbook note 01HV3 "replica lag spiked to 40s during step migrate"`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ws, st, err := openWorkspaceState(ctx, e)
			if err != nil {
				return err
			}
			defer st.Close()
			run, err := st.GetRun(ctx, args[0])
			if err != nil {
				return badInput("%v", err)
			}
			text := strings.Join(args[1:], " ")
			if strings.TrimSpace(text) == "" {
				return badInput("the note is empty; say what happened")
			}
			ev, err := newEngine(st).Note(ctx, run.ID, lifecycle.Actor(ws.Dir), text)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "noted on run %s (event %d)\n", run.ID, ev.Seq)
			return nil
		},
	}
}
