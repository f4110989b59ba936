package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/store"
)

func newRunsCmd(e *env) *cobra.Command {
	var output, envName, server string
	var limit int
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List the runs recorded in this workspace, newest first",
		Example: `  opsbook runs
  opsbook runs --env production -n 10 -o json
  opsbook runs --server http://127.0.0.1:8080     # the server's runs`,
		Long: `Runs lists the runs of the workspace's run store, newest first. A run that
claims to be running but whose process died (its lease is not held by a live
process) is shown as interrupted: continue it with ` + "`opsbook resume RUN`" + `.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if c, err := remoteClient(server); err != nil {
				return badInput("%v", err)
			} else if c != nil {
				return runsRemote(ctx, e, c, client.RunFilter{Environment: envName, Limit: limit}, output)
			}
			_, st, err := openWorkspaceState(ctx, e)
			if err != nil {
				return err
			}
			defer st.Close()
			runs, err := st.ListRuns(ctx, store.RunFilter{Environment: envName, Limit: limit})
			if err != nil {
				return err
			}
			for i, r := range runs {
				if r.Status == runbook.RunRunning || r.Status == runbook.RunWaiting {
					alive, err := st.RunOwnerAlive(ctx, r.ID)
					if err != nil {
						return err
					}
					if !alive {
						runs[i].Status = runbook.RunInterrupted
					}
				}
			}
			if output != "text" {
				return writeData(e.stdout, output, runs)
			}
			if len(runs) == 0 {
				fmt.Fprintln(e.stderr, "no runs yet; start one with `opsbook run FILE --env NAME`")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tSTATUS\tENV\tRUNBOOK\tSNAPSHOT\tSTARTED\tDURATION\tBY")
			for _, r := range runs {
				dur := "-"
				if !r.StartedAt.IsZero() {
					end := r.FinishedAt
					if end.IsZero() {
						end = time.Now()
					}
					dur = elapsed(end.Sub(r.StartedAt))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Environment, r.Runbook,
					snapshot.ShortOf(r.Snapshot), r.CreatedAt.Local().Format("2006-01-02 15:04:05"), dur, r.CreatedBy)
			}
			return tw.Flush()
		},
	}
	outputFlag(cmd, &output, "text", "json", "yaml")
	cmd.Flags().StringVarP(&envName, "env", "e", "", "only runs in this environment")
	cmd.Flags().IntVarP(&limit, "limit", "n", 50, "at most this many runs")
	addServerFlag(cmd, &server)
	return cmd
}
