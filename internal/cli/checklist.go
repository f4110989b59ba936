package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/report"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func newChecklistCmd(e *env) *cobra.Command {
	var runID, format, out, tz, db string
	cmd := &cobra.Command{
		Use:   "checklist TASK [--run ID] [-o md|html] [-f FILE]",
		Short: "Print a task's checklist, blank or filled in from a run",
		Long: `Print the task's checklist in its language (en or zh): the pre-execution items
with who ticked them and when, and the step table — planned estimate, actual
start and end, duration, result, verification result, decision and who took it,
per-host results — with the sign-off column left blank for ink.

Without --run the checklist is blank, to print before the run and fill by hand.
-o html writes a standalone page that prints on one A4 page for a runbook
of a dozen steps (print it from a browser, or with
chromium --headless --print-to-pdf=checklist.pdf checklist.html).

The run is read from the workspace's local run stores (.opsbook/*.db) unless
--db names one (a SQLite file or a postgres:// URL).`,
		Example: `  opsbook checklist 2025-03-01-postgres-upgrade-12-to-15 -o html -f checklist.html
  opsbook checklist 2025-03-01-postgres-upgrade-12-to-15 --run r-01HX… -o md`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, cleanup, err := reportInput(cmd.Context(), e, args[0], runID, db, tz)
			if err != nil {
				return err
			}
			defer cleanup()
			var buf bytes.Buffer
			if format == "html" {
				err = report.WriteChecklistHTML(&buf, *in)
			} else {
				err = report.WriteChecklistMarkdown(&buf, *in)
			}
			if err != nil {
				return fmt.Errorf("render the checklist: %w", err)
			}
			return writeOutput(e.stdout, out, buf.Bytes(), true)
		},
	}
	cmd.Flags().StringVar(&runID, "run", "", "fill the checklist from this run (id or unique prefix)")
	formats := outputFlag(cmd, &format, "md", "html")
	fileFlag(cmd, &out, "write to FILE instead of standard output")
	// The flags before the one convention (-o/--output is the format, -f/--file the file).
	cmd.Flags().Var(formats, "format", "output format (old name of --output)")
	renamedFlag(e, cmd, "format", "-o/--output")
	cmd.Flags().StringVar(&out, "out", "", "old name of --file")
	renamedFlag(e, cmd, "out", "-f/--file")
	cmd.Flags().StringVar(&tz, "tz", "", "time zone of the times shown (IANA name; default: the local one)")
	cmd.Flags().StringVar(&db, "db", "", "run store to read the run from (default: the workspace's .opsbook/*.db)")
	return cmd
}

// reportInput gathers what the checklist and the postmortem are made of.
func reportInput(ctx context.Context, e *env, taskName, runID, db, tz string) (*report.Input, func(), error) {
	noop := func() {}
	ws, t, err := loadTask(e, taskName)
	if err != nil {
		return nil, noop, err
	}
	loc := time.Local
	if tz != "" {
		if loc, err = time.LoadLocation(tz); err != nil {
			return nil, noop, badInput("--tz %q: %v; use an IANA name such as Europe/Berlin or UTC", tz, err)
		}
	}
	in := &report.Input{Task: t.Name, Lang: t.Lang, Runbook: t.Runbook, Location: loc}
	rep, err := t.Evaluate("", time.Now(), gates.Options{})
	if err != nil {
		return nil, noop, err
	}
	for _, it := range rep.Checklist {
		in.Items = append(in.Items, report.Item{ID: it.ID, Text: it.Text, Ticked: it.Ticked, By: it.By, At: it.At, Note: it.Note})
	}
	reviewed := t.Snapshot
	if runID == "" {
		addApprovals(in, t, reviewed)
		return in, noop, nil
	}
	st, run, err := findRun(ctx, ws, db, runID)
	if err != nil {
		return nil, noop, err
	}
	cleanup := func() { st.Close() }
	if !runOfTask(t, run) {
		cleanup()
		return nil, noop, badInput("run %s ran %s, not task %s; pick one of the task's runs (opsbook status %s lists them)", run.ID, run.Runbook, t.Name, t.Name)
	}
	var evs []runbook.Event
	for ev, err := range st.StateEvents(ctx, run.ID, 0) {
		if err != nil {
			cleanup()
			return nil, noop, fmt.Errorf("read the events of run %s: %w", run.ID, err)
		}
		evs = append(evs, ev)
	}
	in.Run, in.Events = &run, evs
	for _, r := range lifecycle.Runs(t.Records) {
		if r.RunID == run.ID && r.Snapshot != "" {
			reviewed = r.Snapshot
		}
	}
	if reviewed != t.Snapshot {
		fmt.Fprintf(e.stderr, "note: the task's documents changed since run %s; the steps listed are today's\n", run.ID)
	}
	addApprovals(in, t, reviewed)
	return in, cleanup, nil
}

func addApprovals(in *report.Input, t *gates.Task, snap string) {
	for _, a := range lifecycle.ReviewsOf(t.Records, snap, t.Author).Approvers {
		in.Approved = append(in.Approved, report.Approval{By: a.Actor, At: a.Time, Note: a.Note})
	}
}

// runOfTask reports whether run executed the task's runbook.
func runOfTask(t *gates.Task, run runbook.Run) bool {
	if run.Task != "" {
		return run.Task == t.Name
	}
	name, ok := gates.TaskOf(run.Runbook)
	return ok && name == t.Name
}

// findRun opens the run store holding runID: db when given, else each
// SQLite file of the workspace's state directory in turn.
func findRun(ctx context.Context, ws *workspace.Workspace, db, runID string) (*store.Store, runbook.Run, error) {
	dbs := []string{db}
	if db == "" {
		dbs, _ = filepath.Glob(filepath.Join(ws.StateDir(), "*.db"))
		sort.Strings(dbs)
		if len(dbs) == 0 {
			return nil, runbook.Run{}, badInput("no run store in %s: the run was not made from this workspace; pass --db FILE", ws.StateDir())
		}
	}
	for _, path := range dbs {
		st, err := store.Open(ctx, path)
		if err != nil {
			return nil, runbook.Run{}, fmt.Errorf("open run store %s: %w", path, err)
		}
		run, err := st.GetRun(ctx, runID)
		if err == nil {
			return st, run, nil
		}
		st.Close()
		if !errors.Is(err, store.ErrNotFound) {
			return nil, runbook.Run{}, badInput("%v", err)
		}
	}
	return nil, runbook.Run{}, badInput("no run %s in %s; `opsbook status TASK` lists the task's runs", runID, strings.Join(dbs, ", "))
}

// writeOutput writes data to path, or to w when path is empty. Unless
// overwrite, an existing file is kept and the command fails.
func writeOutput(w io.Writer, path string, data []byte, overwrite bool) error {
	if path == "" || path == "-" {
		_, err := w.Write(data)
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if !overwrite {
		flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if errors.Is(err, os.ErrExist) {
		return badInput("%s exists and may hold people's words; move it away or pass --force to replace it", path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
