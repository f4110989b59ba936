package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerCatalog() {
	h.s.Handle("GET /api/v1/projects", auth.NeedSomewhere(auth.RunbookView), "Projects the caller may view", h.listProjects)
	h.s.Handle("GET /api/v1/environments", auth.NeedSomewhere(auth.RunbookView), "Environments of the workspace", h.listEnvironments)
	h.s.Handle("GET /api/v1/runbooks", auth.NeedSomewhere(auth.RunbookView), "Runbooks with the last run in each environment (the overview matrix)", h.listRunbooks)
	h.s.Handle("GET /api/v1/runbooks/{path...}", auth.Need(auth.RunbookView, h.scopeRunbookPath), "One runbook: steps, parameters, rendered HTML, published snapshot", h.getRunbook)
	h.s.Handle("POST /api/v1/workspace/sync", auth.NeedSomewhere(auth.RunbookEdit), "Re-read the workspace from disk", h.syncWorkspace)
}

func (h *handlers) listProjects(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	out := []string{}
	for _, name := range h.s.Catalog().Projects() {
		if p.Can(auth.RunbookView, auth.Scope{Project: name}) {
			out = append(out, name)
		}
	}
	server.WriteJSON(w, http.StatusOK, Page[string]{Items: out})
	return nil
}

type environmentView struct {
	Name      string `json:"name"`
	Protected bool   `json:"protected"`
	Hosts     int    `json:"hosts"`
	CanRun    bool   `json:"can_run"` // the caller holds RunbookRun here in some project
}

func (h *handlers) listEnvironments(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	out := []environmentView{}
	for _, e := range h.s.Catalog().Workspace().Config.Environments {
		if !p.Can(auth.RunbookView, auth.Scope{Environment: e.Name}) {
			continue
		}
		canRun := false
		for _, g := range p.Grants {
			if (g.Permission == auth.RunbookRun || g.Permission == auth.Admin) && g.Covers(auth.Scope{Environment: e.Name}) {
				canRun = true
			}
		}
		out = append(out, environmentView{Name: e.Name, Protected: e.Protected, Hosts: len(e.Hosts), CanRun: canRun})
	}
	server.WriteJSON(w, http.StatusOK, Page[environmentView]{Items: out})
	return nil
}

type runSummary struct {
	ID         string            `json:"id"`
	Status     runbook.RunStatus `json:"status"`
	CreatedBy  string            `json:"created_by"`
	CreatedAt  time.Time         `json:"created_at"`
	FinishedAt time.Time         `json:"finished_at,omitzero"`
}

type runbookView struct {
	Path        string                `json:"path"`
	Project     string                `json:"project"`
	Title       string                `json:"title"`
	Tags        []string              `json:"tags,omitempty"`
	Content     string                `json:"content"` // snapshot of the documents as they are now
	Published   *store.Publication    `json:"published,omitempty"`
	LastRuns    map[string]runSummary `json:"last_runs"` // by environment
	Diagnostics []runbook.Diagnostic  `json:"diagnostics,omitempty"`
}

func (h *handlers) listRunbooks(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ctx := r.Context()
	project := r.URL.Query().Get("project")
	tag := r.URL.Query().Get("tag")
	envs := h.s.Catalog().Workspace().EnvironmentNames()
	out := []runbookView{}
	for _, e := range h.s.Catalog().List() {
		if !p.Can(auth.RunbookView, auth.Scope{Project: e.Project}) || (project != "" && e.Project != project) || (tag != "" && !contains(e.Tags, tag)) {
			continue
		}
		v := runbookView{Path: e.Path, Project: e.Project, Title: e.Title, Tags: e.Tags, Content: e.Content, LastRuns: map[string]runSummary{}, Diagnostics: e.Diagnostics}
		if pub, err := h.s.Store().Published(ctx, e.Path); err == nil {
			v.Published = &pub
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		for _, env := range envs {
			if !p.Can(auth.RunbookView, auth.Scope{Project: e.Project, Environment: env}) {
				continue
			}
			runs, err := h.s.Store().ListRuns(ctx, store.RunFilter{Runbook: e.Path, Environment: env, Limit: 1})
			if err != nil {
				return err
			}
			if len(runs) == 1 {
				v.LastRuns[env] = summarise(runs[0])
			}
		}
		out = append(out, v)
	}
	server.WriteJSON(w, http.StatusOK, Page[runbookView]{Items: out})
	return nil
}

func summarise(r runbook.Run) runSummary {
	return runSummary{ID: r.ID, Status: r.Status, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, FinishedAt: r.FinishedAt}
}

func contains(l []string, s string) bool {
	for _, v := range l {
		if v == s {
			return true
		}
	}
	return false
}

type runbookDetail struct {
	runbookView
	Front    runbook.FrontMatter `json:"front"`
	Steps    []runbook.Step      `json:"steps"`
	HTML     string              `json:"html"` // the document rendered and sanitised
	Rollback string              `json:"rollback,omitempty"`
}

func (h *handlers) getRunbook(w http.ResponseWriter, r *http.Request) error {
	rel := r.PathValue("path")
	e, ok := h.s.Catalog().Get(rel)
	if !ok {
		return server.Errorf(http.StatusNotFound, "not_found", "runbook %s is not in the workspace; list them with GET /api/v1/runbooks", rel)
	}
	v := runbookDetail{
		runbookView: runbookView{Path: e.Path, Project: e.Project, Title: e.Title, Tags: e.Tags, Content: e.Content, Diagnostics: e.Diagnostics, LastRuns: map[string]runSummary{}},
		Front:       e.Doc.Front, Steps: e.Doc.Steps, HTML: e.HTML(),
	}
	if e.Rollback != nil {
		v.Rollback = e.Rollback.Path
	}
	if pub, err := h.s.Store().Published(r.Context(), e.Path); err == nil {
		v.Published = &pub
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	server.WriteJSON(w, http.StatusOK, v)
	return nil
}

// syncResult is the answer of POST /api/v1/workspace/sync.
type syncResult struct {
	Runbooks int `json:"runbooks"` // runbooks in the workspace now
}

func (h *handlers) syncWorkspace(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.Catalog().Sync(); err != nil {
		return server.Errorf(http.StatusUnprocessableEntity, "workspace_invalid", "%v", err)
	}
	if err := h.s.AuditRequest(r, "workspace.sync", "workspace", nil); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, syncResult{Runbooks: len(h.s.Catalog().List())})
	return nil
}
