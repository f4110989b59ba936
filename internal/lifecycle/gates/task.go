// Package gates decides whether a planned operation may run in an
// environment: reviews of the current snapshot, a rehearsal of that snapshot
// outside protected environments, the ticked pre-execution checklist, the
// change windows and freezes. The CLI (`opsbook status`, `opsbook run`)
// and the server call the same Evaluate, so a gate is met or not in one
// place only.
//
// It lives beside package lifecycle rather than in it because it reads the
// workspace, and the workspace already reads lifecycle records.
package gates

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/markdown"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/snapshot"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Task is a planned operation with everything the gates read.
type Task struct {
	Name     string
	Dir      string // absolute
	Rel      string // relative to the workspace, slash-separated
	Archived bool
	Records  []lifecycle.Record
	Author   string // from the created record
	Lang     string // "en" or "zh"

	Runbook  *runbook.Document
	Rollback *runbook.Document // nil when the runbook names none
	// Called are the runbooks that call steps name, by the reference
	// written in the call block, as engine.Plan wants them.
	Called map[string]*runbook.Document
	called []*runbook.Document // in the order the runbook calls them

	// Items are the pre-execution checklist items a protected run needs
	// ticked: the checklist document's, else the built-in list.
	Items []workspace.ChecklistItem

	// Signed are the Review, Check and Uncheck records that commits signed
	// with a key of opsbook.yaml's signers: vouch for (verified);
	// SignedErr is why they could not be checked, if so.
	Signed    []lifecycle.Record
	SignedErr error

	// Snapshot is the review snapshot: the runbook, its rollback, the
	// called runbooks, the parameter definitions and the non-secret
	// variables of every protected environment. Reviews and rehearsals
	// are bound to it.
	Snapshot string

	ws *workspace.Workspace
}

// Load reads the task named name (or its directory) from the workspace.
func Load(ws *workspace.Workspace, name string) (*Task, error) {
	wt, err := ws.Task(name, time.Now())
	if err != nil {
		return nil, err
	}
	t := &Task{Name: wt.Name, Rel: wt.Dir, Dir: ws.Path(wt.Dir), Archived: wt.Archived, ws: ws}
	t.Records, err = lifecycle.Load(lifecycle.PathIn(t.Dir))
	if err != nil {
		return nil, err
	}
	t.Author = lifecycle.AuthorOf(t.Records)
	t.Signed, t.SignedErr = t.signedRecords()

	files := workspace.FilesFor(t.Name)
	rbRel := path.Join(t.Rel, files.Runbook)
	t.Runbook, _, err = markdown.ParseFile(ws.Path(rbRel))
	if err != nil {
		return nil, fmt.Errorf("task %s: read its runbook %s: %w", t.Name, rbRel, err)
	}
	t.Runbook.Path = rbRel
	rel, err := runbook.RollbackPath(".", t.Runbook)
	if err != nil {
		return nil, err
	}
	if rel != "" {
		t.Rollback, _, err = markdown.ParseFile(ws.Path(rel))
		if err != nil {
			return nil, fmt.Errorf("%s: rollback: %s cannot be read (%w); fix the path (relative to the runbook)", rbRel, t.Runbook.Front.Rollback, err)
		}
		t.Rollback.Path = rel
	}
	// A called runbook that cannot be read is left out: lint reports it
	// with its position, and the run fails on that step.
	t.Called, t.called, _ = workspace.ResolveCalls(".", func(rel string) (*runbook.Document, error) {
		doc, _, err := markdown.ParseFile(ws.Path(rel))
		if err != nil {
			return nil, nil
		}
		doc.Path = rel
		return doc, nil
	}, t.Runbook, t.Rollback)

	t.Lang = t.Runbook.Lang
	for _, r := range t.Records {
		if r.Type == lifecycle.Created && r.Data["lang"] != "" {
			t.Lang = r.Data["lang"]
		}
	}
	if t.Lang != "zh" {
		t.Lang = "en"
	}

	if src, err := os.ReadFile(ws.Path(path.Join(t.Rel, files.Checklist))); err == nil {
		t.Items = workspace.ChecklistItems(src)
	}
	if len(t.Items) == 0 {
		for _, id := range workspace.PreExecutionItems {
			t.Items = append(t.Items, workspace.ChecklistItem{ID: id})
		}
	}

	vars := map[string]string{}
	for _, e := range ws.Config.Environments {
		if !e.Protected {
			continue
		}
		for k, v := range e.Variables {
			vars[e.Name+"."+k] = v
		}
	}
	t.Snapshot = snapshot.Of(snapshot.FromDocuments(t.Runbook, t.Rollback, t.called, vars)).String()
	return t, nil
}

// RunSnapshot is the snapshot of a run of the task in env: the same
// documents with env's non-secret variables. The CLI and the server store
// it on the run; a rehearsal is recognised by it.
func (t *Task) RunSnapshot(env workspace.Environment) string {
	return snapshot.Of(snapshot.FromDocuments(t.Runbook, t.Rollback, t.called, env.Variables)).String()
}

// CalledInOrder returns the called runbooks in the order the runbook calls them.
func (t *Task) CalledInOrder() []*runbook.Document { return t.called }

// RecordPath is the task's lifecycle file.
func (t *Task) RecordPath() string { return lifecycle.PathIn(t.Dir) }

// Append adds a record to the task's lifecycle file and to t.Records.
func (t *Task) Append(r lifecycle.Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	if err := lifecycle.Append(t.RecordPath(), r); err != nil {
		return fmt.Errorf("task %s: %w", t.Name, err)
	}
	t.Records = append(t.Records, r)
	return nil
}

// TaskOf returns the task whose directory holds the runbook at rel (a path
// relative to the workspace), if it is one.
func TaskOf(rel string) (string, bool) {
	rel = filepath.ToSlash(rel)
	dir := path.Dir(rel)
	name := path.Base(dir)
	inActive := path.Dir(dir) == workspace.ActiveDir
	inArchive := strings.HasPrefix(dir, workspace.ArchiveDir+"/") && strings.Count(strings.TrimPrefix(dir, workspace.ArchiveDir+"/"), "/") == 2
	if !inActive && !inArchive {
		return "", false
	}
	if path.Base(rel) != workspace.FilesFor(name).Runbook {
		return "", false
	}
	return name, true
}

// DefaultEnvironment is the environment status reports on when none is
// named: the first protected one, else the last declared.
func DefaultEnvironment(ws *workspace.Workspace) string {
	envs := ws.Config.Environments
	for _, e := range envs {
		if e.Protected {
			return e.Name
		}
	}
	if len(envs) > 0 {
		return envs[len(envs)-1].Name
	}
	return ""
}
