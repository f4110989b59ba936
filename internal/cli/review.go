package cli

import (
	"context"
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/snapshot"
)

func newReviewCmd(e *env) *cobra.Command {
	var approve, requestChanges bool
	var comment, as, server string
	cmd := &cobra.Command{
		Use:   "review TASK --approve|--request-changes [--comment TEXT]",
		Short: "Approve a task's current snapshot, or request changes",
		Long: `Record a review of the task's current snapshot.

With a server (--server or OPSBOOK_SERVER, and an API key in OPSBOOK_API_KEY
from opsbook login) the review goes to the server as the signed-in user: a
verified review, the only kind a protected environment's gate counts when
the workspace has a server. It needs RunbookApprove; a second review of the
same snapshot by the same user replaces the first.

Without a server it is recorded in the task's lifecycle.jsonl, and the
reviewer is git's user.email in the workspace, else the OS user: an
unverified review, since anyone can set user.email. There is no flag to
review as someone else. The task's author (who ran opsbook new) cannot
approve their own task. A review is bound to the snapshot:
any later change to the runbook, its rollback, a called runbook, a parameter
definition or a protected environment's variables makes earlier approvals
stale (they stay in the history, shown as stale by opsbook status), and the
task needs fresh ones. A request for changes blocks protected runs until the
same reviewer approves.`,
		Example: `  opsbook review 2025-03-01-postgres-upgrade-12-to-15 --approve --comment "rollback tested on staging"
  opsbook review 2025-03-01-postgres-upgrade-12-to-15 --request-changes --comment "step 4 needs a verify block"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if as != "" {
				return badInput("--as is not accepted for reviews: the reviewer is git's user.email (or the OS user); run the command as that person")
			}
			if approve == requestChanges {
				return badInput("give exactly one of --approve or --request-changes")
			}
			if requestChanges && comment == "" {
				return badInput("--request-changes needs --comment saying what to change")
			}
			ws, t, err := loadTask(e, args[0])
			if err != nil {
				return err
			}
			if t.Archived {
				return badInput("task %s is archived; reviews are for tasks still to run", t.Name)
			}
			verdict := lifecycle.RequestChanges
			if approve {
				verdict = lifecycle.Approve
			}
			c, err := taskClient(server, ws)
			if err != nil {
				return badInput("%v", err)
			}
			if c != nil {
				return reviewRemote(cmd.Context(), e, c, t, verdict, comment)
			}
			actor := lifecycle.Actor(ws.Dir)
			if approve {
				if actor == t.Author {
					return &ExitError{Code: ExitRefused, Err: fmt.Errorf("%s is the author of task %s and cannot approve it; ask two other people to run opsbook review --approve", actor, t.Name)}
				}
				for _, a := range lifecycle.ReviewsOf(t.Records, t.Snapshot, t.Author).Approvers {
					if a.Actor == actor {
						fmt.Fprintf(e.stdout, "%s already approved snapshot %s at %s; nothing recorded\n", actor, shortSnap(t), a.Time.UTC().Format("2006-01-02 15:04 MST"))
						return nil
					}
				}
			}
			now, err := lifecycleNow()
			if err != nil {
				return badInput("%v", err)
			}
			err = t.Append(lifecycle.Record{Time: now.UTC(), Type: lifecycle.Review, Actor: actor,
				Verdict: verdict, Snapshot: t.Snapshot, Note: comment})
			if err != nil {
				return err
			}
			rv := lifecycle.ReviewsOf(t.Records, t.Snapshot, t.Author)
			word := "approved"
			if requestChanges {
				word = "requested changes to"
			}
			fmt.Fprintf(e.stdout, "%s %s snapshot %s of %s (unverified: the name is git's user.email, which anyone can set)\n", actor, word, shortSnap(t), t.Name)
			if len(ws.Config.Signers) > 0 {
				fmt.Fprintf(e.stdout, "commit %s in a commit signed with the key listed for %s under signers: (git commit -S) to make it verified\n", path.Join(t.Rel, lifecycle.FileName), actor)
			}
			fmt.Fprintf(e.stdout, "%d approval(s) of this snapshot", len(rv.Approvers))
			if env := gates.DefaultEnvironment(ws); env != "" {
				if en, err := ws.Environment(env); err == nil && en.Reviewers > 0 {
					fmt.Fprintf(e.stdout, "; %s needs %d", env, en.Reviewers)
				}
			}
			fmt.Fprintln(e.stdout)
			return nil
		},
	}
	cmd.Flags().BoolVar(&approve, "approve", false, "approve the current snapshot")
	cmd.Flags().BoolVar(&requestChanges, "request-changes", false, "ask for changes (needs --comment)")
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "what the review says")
	cmd.Flags().StringVar(&as, "as", "", "not accepted: the reviewer is always the current identity")
	addServerFlag(cmd, &server)
	_ = cmd.Flags().MarkHidden("as")
	return cmd
}

// reviewRemote records the review on the server as the key's user.
func reviewRemote(ctx context.Context, e *env, c *client.Client, t *gates.Task, verdict, comment string) error {
	res, err := c.ReviewTask(ctx, t.Name, apitypes.ReviewRequest{Verdict: verdict, Comment: comment, Snapshot: t.Snapshot})
	if err != nil {
		return serverRefusal(err)
	}
	word := "approved"
	if verdict == lifecycle.RequestChanges {
		word = "requested changes to"
	}
	again := ""
	if res.Replaced {
		again = "; it replaces your earlier review of this snapshot"
	}
	fmt.Fprintf(e.stdout, "%s %s snapshot %s of %s (verified: signed in to %s)%s\n", res.Review.Reviewer, word, shortSnap(t), t.Name, c.Base(), again)
	for _, g := range res.Task.Gates {
		if g.ID == gates.GateReviews {
			fmt.Fprintf(e.stdout, "%s: %s\n", res.Task.Environment, g.Detail)
		}
	}
	return nil
}

// serverRefusal maps a server's refusal of a lifecycle action: a request
// the server judged bad (400, 404, 409) is bad input, a refusal of the
// person (403: no grant, the task's author) exit status 5.
func serverRefusal(err error) error {
	switch {
	case client.IsStatus(err, 400), client.IsStatus(err, 404), client.IsStatus(err, 409):
		return badInput("%v", err)
	case client.IsStatus(err, 403):
		return &ExitError{Code: ExitRefused, Err: err}
	}
	return err
}

func shortSnap(t *gates.Task) string {
	return snapshot.ShortOf(t.Snapshot)
}
