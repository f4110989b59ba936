package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/client"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newStatusCmd(e *env) *cobra.Command {
	var envName, output, server string
	cmd := &cobra.Command{
		Use:   "status TASK",
		Short: "Show a task's lifecycle state and the gates between now and a protected run",
		Long: `Show where a planned operation is in its lifecycle — planning, in review,
approved, rehearsed, ready, executing, completed, rolled back, failed, archived —
its snapshot (the content hash of the runbook, its rollback, called runbooks,
parameter definitions and the protected environments' non-secret variables),
and, for each gate before a run in the environment, whether it is met and
what is missing:

  reviews      distinct approvals of the current snapshot (reviewers: in
               opsbook.yaml, 2 by default for protected environments); the
               task's author cannot approve; an edit makes approvals stale
  rehearsal    a successful run of the same snapshot in a non-protected
               environment (rehearsal: in opsbook.yaml)
  checklist    every pre-execution item ticked with opsbook check
  window       inside one of the environment's weekly change windows
  freeze       not inside a dated change freeze

opsbook run refuses a protected run while a gate is unmet (exit status 5) and
prints the same list. --env defaults to the first protected environment.

With a server (--server or OPSBOOK_SERVER) the reviews and ticks its
signed-in users gave are read from it and, in a protected environment, are
the only ones counted; git-email reviews are listed as unverified.`,
		Example: `  opsbook status 2025-03-01-postgres-upgrade-12-to-15
  opsbook status 2025-03-01-postgres-upgrade-12-to-15 --env production --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, t, err := loadTask(e, args[0])
			if err != nil {
				return err
			}
			if envName == "" {
				envName = gates.DefaultEnvironment(ws)
			}
			now, err := lifecycleNow()
			if err != nil {
				return badInput("%v", err)
			}
			var o gates.Options
			c, err := taskClient(server, ws)
			if err != nil {
				return badInput("%v", err)
			}
			if c != nil {
				// The workspace has a server: judge as it does, with its
				// verified reviews and ticks (and in a protected
				// environment, only those).
				v, err := c.TaskReviews(cmd.Context(), t.Name)
				if err != nil {
					return serverRefusal(err)
				}
				o.Verified = &gates.Verified{Records: v.Records()}
			}
			rep, err := t.Evaluate(envName, now, o)
			if err != nil {
				return badInput("%v", err)
			}
			if output != "text" {
				return writeData(e.stdout, output, rep)
			}
			rep.WriteText(e.stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&envName, "env", "", "environment whose gates to report (default: the first protected one)")
	addServerFlag(cmd, &server)
	outputFlag(cmd, &output, "text", "json", "yaml")
	return cmd
}

// lifecycleNow is the time the lifecycle commands judge windows, freezes
// and records by. OPSBOOK_NOW (RFC 3339) replaces the clock; it exists for
// tests of change windows and is documented as test-only.
func lifecycleNow() (time.Time, error) {
	if v := os.Getenv("OPSBOOK_NOW"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("OPSBOOK_NOW=%q: want an RFC 3339 time such as 2025-03-01T22:30:00Z (it is for tests only; unset it)", v)
		}
		return t, nil
	}
	return time.Now(), nil
}

// loadTask finds the workspace and loads a task for the lifecycle commands.
func loadTask(e *env, name string) (*workspace.Workspace, *gates.Task, error) {
	ws, err := findWorkspace(e)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	t, err := gates.Load(ws, name)
	if err != nil {
		return nil, nil, badInput("%v", err)
	}
	return ws, t, nil
}

// taskRun is the lifecycle side of `opsbook run` for a runbook that
// belongs to a task: the gate check before, the records around it.
type taskRun struct {
	task   *gates.Task
	report *gates.Report
	actor  string
}

// admitTaskRun is called by opsbook run before it starts a runbook at
// runbookRel (relative to the workspace) in envName. For a runbook outside
// ops/active/<task>/ it returns nil, nil. When a gate is unmet it prints
// the gate list to stderr and returns an *ExitError with ExitRefused.
// Snapshot returns what the run must store as its snapshot.
func admitTaskRun(e *env, ws *workspace.Workspace, runbookRel, envName, emergency string) (*taskRun, error) {
	name, ok := gates.TaskOf(runbookRel)
	if !ok {
		return nil, nil
	}
	t, err := gates.Load(ws, name)
	if err != nil {
		return nil, badInput("%v", err)
	}
	now, err := lifecycleNow()
	if err != nil {
		return nil, badInput("%v", err)
	}
	o := gates.Options{Emergency: emergency}
	if o.Verified, err = serverReviews(ws, t, envName); err != nil {
		return nil, err
	}
	rep, err := t.Admit(envName, now, o)
	if err := admission(e, t.Name, envName, rep, err != nil || rep != nil && rep.Protected, err); err != nil {
		return nil, err
	}
	return &taskRun{task: t, report: rep, actor: lifecycle.Actor(ws.Dir)}, nil
}

// taskClient is the server that reviews, ticks and gates of the
// workspace's tasks go through: --server or OPSBOOK_SERVER, else
// opsbook.yaml's server:. It is nil when the workspace has none; an error
// when it has one but no key to talk to it.
func taskClient(flag string, ws *workspace.Workspace) (*client.Client, error) {
	if flag == "" && os.Getenv("OPSBOOK_SERVER") == "" && ws.Config.Server != "" {
		c, err := client.FromEnv(ws.Config.Server)
		if err != nil {
			return nil, fmt.Errorf("this workspace has a server (opsbook.yaml server: %s), so its reviews and ticks are the server's: %w", ws.Config.Server, err)
		}
		return c, nil
	}
	return remoteClient(flag)
}

// serverReviews returns, for a local run of task t in a protected
// environment of a workspace that declares a server (opsbook.yaml
// server:), the reviews and ticks of the server's signed-in users: the
// only ones the run's gates may count. Without a server declared, or in an
// environment that is not protected, it returns nil (the lifecycle file's
// records count). When the server cannot be asked the run is refused
// (exit status 5), saying how to proceed.
func serverReviews(ws *workspace.Workspace, t *gates.Task, envName string) (*gates.Verified, error) {
	if ws.Config.Server == "" {
		return nil, nil
	}
	env, err := ws.Environment(envName)
	if err != nil || !env.Protected {
		return nil, nil
	}
	c, err := client.FromEnv(ws.Config.Server)
	if err != nil {
		return nil, &ExitError{Code: ExitRefused, Err: fmt.Errorf("task %s: %s is protected and the workspace has a server (opsbook.yaml server: %s), whose signed-in reviewers alone count there: %w", t.Name, envName, ws.Config.Server, err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := c.TaskReviews(ctx, t.Name)
	if err != nil {
		return nil, &ExitError{Code: ExitRefused, Err: fmt.Errorf("task %s: %s is protected and its reviews are the server's, which could not be read: %w", t.Name, envName, err)}
	}
	return &gates.Verified{Records: v.Records()}, nil
}

// admitStandingRun applies the change calendar to a runbook that is not a
// task's (gates.AdmitStanding): in a protected environment a normal or
// emergency change runs inside a window and outside freezes, or with an
// emergency override.
func admitStandingRun(e *env, ws *workspace.Workspace, rel string, doc *runbook.Document, envName, emergency string) error {
	now, err := lifecycleNow()
	if err != nil {
		return badInput("%v", err)
	}
	rep, err := gates.AdmitStanding(ws, rel, doc, envName, now, emergency)
	return admission(e, rel, envName, rep, true, err)
}

// admission prints an admission's gate list to stderr when show holds and
// there is one, and maps its error: a *gates.Refusal is ExitRefused, any
// other error bad input.
func admission(e *env, what, envName string, rep *gates.Report, show bool, err error) error {
	if show && rep != nil && len(rep.Gates) > 0 {
		fmt.Fprintf(e.stderr, "Gates before a run of %s in %s:\n", what, envName)
		rep.WriteGates(e.stderr)
	}
	if err == nil {
		return nil
	}
	var refusal *gates.Refusal
	if errors.As(err, &refusal) {
		return &ExitError{Code: ExitRefused, Err: err}
	}
	return badInput("%v", err)
}

// Snapshot is the snapshot a run of the task in its environment stores.
func (tr *taskRun) Snapshot() string { return tr.report.RunSnapshot }

// Started records the started run in the task's lifecycle file.
func (tr *taskRun) Started(run runbook.Run) error {
	return tr.task.RecordStart(tr.report, run, tr.actor)
}

// Finished records the run's final status; a protected run completes the task.
func (tr *taskRun) Finished(run runbook.Run) error {
	return tr.task.RecordFinish(tr.report, run, tr.actor)
}
