package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/lifecycle"
)

func newCheckCmd(e *env) *cobra.Command {
	var note, server string
	var uncheck bool
	cmd := &cobra.Command{
		Use:   "check TASK [ITEM]",
		Short: "Tick (or --uncheck) an item of a task's pre-execution checklist",
		Long: "Record that a pre-execution item is done, with who and when. With a server\n" +
			"(--server or OPSBOOK_SERVER, key in OPSBOOK_API_KEY) the tick goes to the\n" +
			"server as the signed-in user (verified; needs RunbookRun), and only such\n" +
			"ticks count for a protected environment. Without one it goes to\n" +
			"lifecycle.jsonl under git's user.email, else the OS user (unverified).\n" +
			"The items are the \"- [ ] `id` text\"\n" +
			"lines of the task's checklist document (by default prerequisites,\n" +
			"change-approved, teams-notified, window-confirmed, backups-done,\n" +
			"rollback-ready); every one must be ticked before a protected run.\n" +
			"Without ITEM, list the items and who ticked them.",
		Example: `  opsbook check 2025-03-01-postgres-upgrade-12-to-15 backups-done --note "pg_dump 42 GB, restore tested on stg-db2"
  opsbook check 2025-03-01-postgres-upgrade-12-to-15 teams-notified --uncheck --note "date moved"
  opsbook check 2025-03-01-postgres-upgrade-12-to-15`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, t, err := loadTask(e, args[0])
			if err != nil {
				return err
			}
			c, err := taskClient(server, ws)
			if err != nil {
				return badInput("%v", err)
			}
			if len(args) == 1 {
				recs, how := t.Records, "unverified"
				if c != nil {
					v, err := c.TaskReviews(cmd.Context(), t.Name)
					if err != nil {
						return serverRefusal(err)
					}
					recs, how = v.Records(), "verified"
				}
				ticks := lifecycle.Ticks(recs)
				for _, it := range t.Items {
					if r, ok := ticks[it.ID]; ok {
						fmt.Fprintf(e.stdout, "[x] %-18s %s (%s) at %s %s\n", it.ID, r.Actor, how, r.Time.UTC().Format("2006-01-02 15:04 MST"), r.Note)
					} else {
						fmt.Fprintf(e.stdout, "[ ] %-18s %s\n", it.ID, it.Text)
					}
				}
				return nil
			}
			item := args[1]
			var ids []string
			known := false
			for _, it := range t.Items {
				ids = append(ids, it.ID)
				known = known || it.ID == item
			}
			if !known {
				return badInput("task %s has no pre-execution item %q; its checklist lists %s", t.Name, item, strings.Join(ids, ", "))
			}
			if t.Archived {
				return badInput("task %s is archived; its checklist can no longer change", t.Name)
			}
			if c != nil {
				tk, err := c.TickTask(cmd.Context(), t.Name, item, apitypes.TickRequest{Uncheck: uncheck, Note: note})
				if err != nil {
					return serverRefusal(err)
				}
				verb := "ticked"
				if !tk.Ticked {
					verb = "unticked"
				}
				fmt.Fprintf(e.stdout, "%s %s %s (verified: signed in to %s)\n", tk.Actor, verb, item, c.Base())
				return nil
			}
			now, err := lifecycleNow()
			if err != nil {
				return badInput("%v", err)
			}
			actor := lifecycle.Actor(ws.Dir)
			_, ticked := lifecycle.Ticks(t.Records)[item]
			typ := lifecycle.Check
			switch {
			case uncheck && !ticked:
				fmt.Fprintf(e.stdout, "%s is not ticked; nothing recorded\n", item)
				return nil
			case uncheck:
				typ = lifecycle.Uncheck
			}
			if err := t.Append(lifecycle.Record{Time: now.UTC(), Type: typ, Actor: actor, Item: item, Note: note}); err != nil {
				return err
			}
			open := 0
			ticks := lifecycle.Ticks(t.Records)
			for _, id := range ids {
				if _, ok := ticks[id]; !ok {
					open++
				}
			}
			verb := "ticked"
			if uncheck {
				verb = "unticked"
			}
			fmt.Fprintf(e.stdout, "%s %s %s (unverified: the name is git's user.email); %d of %d items ticked\n", actor, verb, item, len(ids)-open, len(ids))
			return nil
		},
	}
	cmd.Flags().StringVarP(&note, "note", "m", "", "evidence or remark recorded with the tick")
	cmd.Flags().BoolVar(&uncheck, "uncheck", false, "untick the item again")
	addServerFlag(cmd, &server)
	return cmd
}
