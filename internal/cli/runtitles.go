package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/workspace"
)

// stepTitles maps step labels (id, rollback/id) to their titles.
func stepTitles(doc, rollback *runbook.Document) map[string]string {
	titles := map[string]string{}
	if doc != nil {
		for _, s := range doc.Steps {
			titles[s.ID] = s.Title
		}
	}
	if rollback != nil {
		for _, s := range rollback.Steps {
			titles["rollback/"+s.ID] = s.Title
		}
	}
	return titles
}

// runDocuments re-reads the runbook (and rollback) a recorded run executed,
// for the titles and estimates of its steps. The note says when what is
// read is not what ran: the document is gone, or has changed since the run
// (its snapshot differs). The documents are nil when they cannot be read.
func runDocuments(e *env, ws *workspace.Workspace, run runbook.Run) (doc, rollback *runbook.Document, note string) {
	quiet := &env{stdin: e.stdin, stdout: io.Discard, stderr: io.Discard, workspace: e.workspace}
	path := ws.Path(run.Runbook)
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Sprintf("%s is no longer in the workspace: steps are shown by id only.", run.Runbook)
	}
	p, err := loadPlan(quiet, ws, path, run.Runbook, run.Environment)
	if err != nil {
		if d, perr := parseDoc(quiet, path); perr == nil {
			return d, nil, fmt.Sprintf("%s has changed since this run (it cannot be planned in %s now: %v): the titles shown are today's.", run.Runbook, run.Environment, err)
		}
		return nil, nil, fmt.Sprintf("%s cannot be read now (%v): steps are shown by id only.", run.Runbook, err)
	}
	if p.Snapshot == run.Snapshot {
		return p.Document, p.Rollback, ""
	}
	if run.Task != "" {
		// A task run records the lifecycle's snapshot, which covers the
		// same documents.
		if tr, err := admitTaskRun(quiet, ws, run.Runbook, run.Environment, run.Emergency); err == nil && tr != nil && tr.Snapshot() == run.Snapshot {
			return p.Document, p.Rollback, ""
		}
	}
	return p.Document, p.Rollback, fmt.Sprintf("%s has changed since this run (snapshot %s then, %s now): the titles shown are today's.",
		run.Runbook, snapshot.ShortOf(run.Snapshot), snapshot.ShortOf(p.Snapshot))
}
