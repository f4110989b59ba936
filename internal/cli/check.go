package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lifecycle"
)

func newCheckCmd(e *env) *cobra.Command {
	var note string
	var uncheck bool
	cmd := &cobra.Command{
		Use:   "check TASK [ITEM]",
		Short: "Tick (or --uncheck) an item of a task's pre-execution checklist",
		Long: "Record in lifecycle.jsonl that a pre-execution item is done, with who (git's\n" +
			"user.email, else the OS user) and when. The items are the \"- [ ] `id` text\"\n" +
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
			if len(args) == 1 {
				ticks := lifecycle.Ticks(t.Records)
				for _, it := range t.Items {
					if r, ok := ticks[it.ID]; ok {
						fmt.Fprintf(e.stdout, "[x] %-18s %s at %s %s\n", it.ID, r.Actor, r.Time.UTC().Format("2006-01-02 15:04 MST"), r.Note)
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
			fmt.Fprintf(e.stdout, "%s %s %s; %d of %d items ticked\n", actor, verb, item, len(ids)-open, len(ids))
			return nil
		},
	}
	cmd.Flags().StringVarP(&note, "note", "m", "", "evidence or remark recorded with the tick")
	cmd.Flags().BoolVar(&uncheck, "uncheck", false, "untick the item again")
	return cmd
}
