package server

import (
	"context"

	"net/http"
	"path"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

// Reviews and checklist ticks of planned operations (tasks) by signed-in
// users: the verified counterpart of `opsbook review` and `opsbook check`
// without a server. The API and the board share these.

// TaskScope is the scope of an action on the task named name: the project
// of its runbook and the environment its reviews and checklist gate — the
// workspace's first protected one (the one `opsbook status` reports).
func (s *Server) TaskScope(name string) (auth.Scope, error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return auth.Scope{}, BadRequest("task %q: give the task's name (its folder under ops/active), not a path", name)
	}
	ws := s.catalog.Workspace()
	rb := path.Join(workspace.ActiveDir, name, workspace.FilesFor(name).Runbook)
	if wt, err := ws.Task(name, s.now()); err == nil {
		rb = path.Join(wt.Dir, workspace.FilesFor(wt.Name).Runbook)
	}
	return auth.Scope{Project: s.catalog.ProjectOf(rb), Environment: gates.DefaultEnvironment(ws)}, nil
}

// LoadTask reads the task named name from the served workspace; a task
// that does not exist is a 404.
func (s *Server) LoadTask(name string) (*gates.Task, error) {
	ws := s.catalog.Workspace()
	if _, err := ws.Task(name, s.now()); err != nil {
		return nil, Errorf(http.StatusNotFound, "not_found", "%v", err)
	}
	t, err := gates.Load(ws, name)
	if err != nil {
		return nil, Errorf(http.StatusConflict, "task_unreadable", "task %s cannot be read: %v", name, err)
	}
	return t, nil
}

// TaskReport evaluates the task's gates for env (the default environment
// when empty) with the server's runs and verified records: what a run
// through this server would be held to.
func (s *Server) TaskReport(ctx context.Context, t *gates.Task, env string) (*gates.Report, error) {
	if env == "" {
		env = gates.DefaultEnvironment(s.catalog.Workspace())
	}
	runs, err := s.store.ListRuns(ctx, store.RunFilter{Task: t.Name, Limit: store.MaxRunLimit})
	if err != nil {
		return nil, err
	}
	verified, err := s.store.VerifiedRecords(ctx, t.Name)
	if err != nil {
		return nil, err
	}
	rep, err := t.Evaluate(env, s.now(), gates.Options{StoreRuns: runs, Verified: &gates.Verified{Records: verified}})
	if err != nil {
		return nil, BadRequest("%v", err)
	}
	return rep, nil
}

// ReviewTask records p's review of the task's current snapshot. snapshot,
// when given, must be that snapshot (the reviewer approves what they
// read). The author may not approve; a request for changes needs a
// comment; a second review by the same person replaces the first. The
// review is audited as task.review.
func (s *Server) ReviewTask(r *http.Request, p *auth.Principal, name, verdict, comment, snapshot string) (store.TaskReview, bool, error) {
	if p == nil || p.UserID == 0 {
		return store.TaskReview{}, false, auth.ErrUnauthenticated
	}
	if p.Service {
		return store.TaskReview{}, false, Errorf(http.StatusForbidden, "forbidden", "%s is a service identity; reviews are given by people", p.Name)
	}
	switch verdict {
	case lifecycle.Approve:
	case lifecycle.RequestChanges:
		if strings.TrimSpace(comment) == "" {
			return store.TaskReview{}, false, BadRequest("a request for changes needs a comment saying what to change")
		}
	default:
		return store.TaskReview{}, false, BadRequest("verdict %q: want %q or %q", verdict, lifecycle.Approve, lifecycle.RequestChanges)
	}
	t, err := s.LoadTask(name)
	if err != nil {
		return store.TaskReview{}, false, err
	}
	if t.Archived {
		return store.TaskReview{}, false, Errorf(http.StatusConflict, "archived", "task %s is archived; reviews are for tasks still to run", t.Name)
	}
	if snapshot != "" && snapshot != t.Snapshot {
		return store.TaskReview{}, false, Errorf(http.StatusConflict, "stale_snapshot",
			"task %s on the server has snapshot %s, not %s, the one you read: read it again (pull your checkout, or sync the server's workspace) and review what the server will run", t.Name, t.Snapshot, snapshot)
	}
	if verdict == lifecycle.Approve && gates.IsAuthor(p.Name, t.Author) {
		return store.TaskReview{}, false, Errorf(http.StatusForbidden, "self_approval",
			"%s is the author of task %s (%s) and cannot approve it; ask other people to review", p.Name, t.Name, t.Author)
	}
	rv := store.TaskReview{Task: t.Name, Snapshot: t.Snapshot, UserID: p.UserID, Reviewer: p.Name, Verdict: verdict, Note: comment, At: s.now()}
	replaced, err := s.store.PutTaskReview(r.Context(), rv)
	if err != nil {
		return store.TaskReview{}, false, err
	}
	if err := s.AuditRequest(r, "task.review", "task/"+t.Name, map[string]string{"verdict": verdict, "snapshot": t.Snapshot, "comment": comment}); err != nil {
		return store.TaskReview{}, false, err
	}
	return rv, replaced, nil
}

// TickTask records that p ticked (or, ticked false, unticked) the task's
// pre-execution checklist item. It is audited as task.check / task.uncheck.
func (s *Server) TickTask(r *http.Request, p *auth.Principal, name, item string, ticked bool, note string) (store.TaskTick, error) {
	if p == nil || p.UserID == 0 {
		return store.TaskTick{}, auth.ErrUnauthenticated
	}
	t, err := s.LoadTask(name)
	if err != nil {
		return store.TaskTick{}, err
	}
	var ids []string
	known := false
	for _, it := range t.Items {
		ids = append(ids, it.ID)
		known = known || it.ID == item
	}
	if !known {
		return store.TaskTick{}, Errorf(http.StatusNotFound, "not_found", "task %s has no pre-execution item %q; its checklist lists %s", t.Name, item, strings.Join(ids, ", "))
	}
	if t.Archived {
		return store.TaskTick{}, Errorf(http.StatusConflict, "archived", "task %s is archived; its checklist can no longer change", t.Name)
	}
	tk := store.TaskTick{Task: t.Name, Item: item, Ticked: ticked, UserID: p.UserID, Actor: p.Name, Note: note, At: s.now()}
	if err := s.store.SetTaskTick(r.Context(), tk); err != nil {
		return store.TaskTick{}, err
	}
	action := "task.check"
	if !ticked {
		action = "task.uncheck"
	}
	if err := s.AuditRequest(r, action, "task/"+t.Name, map[string]string{"item": item, "note": note}); err != nil {
		return store.TaskTick{}, err
	}
	return tk, nil
}
