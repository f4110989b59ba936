package ui

import (
	"errors"
	"html/template"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func (h *handlers) registerRunbook() {
	h.s.Handle("GET /runbooks/{path...}", auth.Need(auth.RunbookView, h.scopeRunbookPath), "UI: a runbook rendered, its steps, snapshot and review state, and the Run form", h.runbookPage)
	h.s.Handle("POST /runs", auth.Need(auth.RunbookRun, h.scopeRunForm), "UI: start a run from the Run form", h.startRun)
}

type runbookData struct {
	Entry       *server.Entry
	Front       runbook.FrontMatter
	Steps       []runbook.Step
	HTML        template.HTML
	Rollback    string
	Published   *store.Publication
	Review      *lifecycle.Summary
	Diagnostics []runbook.Diagnostic
	Form        *runForm
	Runs        []runRow // the latest runs the user may view
	CanPublish  bool     // RunbookEdit, and the current content is not the published one
	// RollbackRun is the Run form of the runbook's rollback document
	// ("Run rollback"), when it has one the user may run.
	RollbackRun *runbookData
	Snapshots   []store.Snapshot // the latest stored, newest first
}

// runForm is the Run form generated from the typed parameters.
type runForm struct {
	Runbook string
	Env     string
	Envs    []workspace.Environment // where the user may run it
	Fields  []paramField
	Current bool // runs the workspace's content (RunbookEdit), else the published snapshot
	// Emergency offers the emergency reason field: the runbook is a
	// change: emergency one, whose reason waives a task's window and freeze.
	Emergency       bool
	EmergencyReason string
	Error           string
	// Rollback marks the form of a rollback document offered beside the
	// runbook's own: its element ids are prefixed, and it asks first.
	Rollback bool
}

// Prefix is what the form's element ids start with, so two forms fit on
// one page.
func (f *runForm) Prefix() string {
	if f.Rollback {
		return "rb-"
	}
	return ""
}

type paramField struct {
	Name, Type, Description, Value, Placeholder, Error string
	Input                                              string // text, password, select
	Mode                                               string // inputmode hint
	Required                                           bool
	Options                                            []option
}

type option struct {
	Value    string
	Selected bool
}

func (h *handlers) runbookPage(w http.ResponseWriter, r *http.Request) error {
	rel := r.PathValue("path")
	e, ok := h.s.Catalog().Get(rel)
	if !ok {
		return server.Errorf(http.StatusNotFound, "not_found", "runbook %s is not in the workspace; the overview lists them", rel)
	}
	d := runbookData{Entry: e, Front: e.Doc.Front, Steps: e.Doc.Steps, HTML: template.HTML(e.HTML()), Diagnostics: e.Diagnostics}
	if e.Rollback != nil {
		d.Rollback = e.Rollback.Path
	}
	if pub, err := h.s.Store().Published(r.Context(), e.Path); err == nil {
		d.Published = &pub
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	d.Review = h.reviewOf(e.Path)
	d.Form = h.newRunForm(principal(r), e, nil)
	d.CanPublish = principal(r).Can(auth.RunbookEdit, auth.Scope{Project: e.Project}) && (d.Published == nil || d.Published.Hash != e.Content)
	runs, _, err := h.visibleRuns(r, principal(r), store.RunFilter{Runbook: e.Path}, 10)
	if err != nil {
		return err
	}
	d.Runs = h.runRows(runs)
	d.RollbackRun = h.rollbackForm(principal(r), e, "", nil)
	if d.Snapshots, err = h.s.Store().ListSnapshots(r.Context(), e.Path, 10); err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "runbook", h.newPage(r, e.Title, "overview", d))
}

// rollbackForm is the Run form of e's rollback document, to start it as
// a run of its own: the rollback's parameters (its defaults, its required
// ones), filled from values under the names the rollback declares, as the
// engine fills them when a run rolls back (runbook.RollbackParams) —
// secrets excepted, they are never echoed. Starting it is POST /runs like
// any run, with the same permission check. nil when e has no rollback or
// the user may run it nowhere.
func (h *handlers) rollbackForm(p *auth.Principal, e *server.Entry, env string, values map[string]string) *runbookData {
	if e == nil || e.Rollback == nil {
		return nil
	}
	rb, ok := h.s.Catalog().Get(e.Rollback.Path)
	if !ok {
		return nil
	}
	given := map[string]string{}
	for _, def := range rb.Doc.Front.Params {
		if v, ok := values[def.Name]; ok && v != "" && !def.SecretParam() {
			given[def.Name] = v
		}
	}
	f := h.newRunForm(p, rb, given)
	if f == nil {
		return nil
	}
	f.Rollback, f.Env = true, env
	return &runbookData{Entry: rb, Form: f}
}

// reviewOf returns the lifecycle summary of the task a runbook belongs to
// (ops/active/<task>/…), nil for standing runbooks.
func (h *handlers) reviewOf(rel string) *lifecycle.Summary {
	if !strings.HasPrefix(rel, workspace.ActiveDir+"/") {
		return nil
	}
	ws := h.s.Catalog().Workspace()
	recs, err := lifecycle.Load(lifecycle.PathIn(ws.Path(path.Dir(rel))))
	if err != nil {
		return nil
	}
	s := lifecycle.Summarize(recs)
	return &s
}

// newRunForm builds the form, or nil when the user may run the runbook in
// no environment. values are the submitted ones (nil on first display).
func (h *handlers) newRunForm(p *auth.Principal, e *server.Entry, values map[string]string) *runForm {
	f := &runForm{Runbook: e.Path, Emergency: e.Doc.Front.Change == runbook.ChangeEmergency}
	for _, env := range h.s.Catalog().Workspace().Config.Environments {
		if allowed := e.Doc.Front.Environments; len(allowed) > 0 && !slices.Contains(allowed, env.Name) {
			continue
		}
		if p.Can(auth.RunbookRun, auth.Scope{Project: e.Project, Environment: env.Name}) {
			f.Envs = append(f.Envs, env)
			f.Current = f.Current || p.Can(auth.RunbookEdit, auth.Scope{Project: e.Project, Environment: env.Name})
		}
	}
	if len(f.Envs) == 0 {
		return nil
	}
	for _, def := range e.Doc.Front.Params {
		fd := paramField{Name: def.Name, Type: string(def.Type), Description: def.Description, Required: def.Required && !def.HasDefault, Input: "text"}
		v, given := values[def.Name]
		switch {
		case def.SecretParam():
			fd.Input = "password" // never echoed back
		case def.Type == runbook.ParamInt:
			// Text with a numeric keyboard, not type=number: a browser
			// empties a number field it cannot parse, hiding the mistake.
			fd.Mode = "numeric"
		case def.Type == runbook.ParamEnum || def.Type == runbook.ParamBool || len(def.Allowed) > 0:
			fd.Input = "select"
			opts := def.Allowed
			if def.Type == runbook.ParamBool {
				opts = []string{"true", "false"}
			}
			cur := def.Default
			if given {
				cur = v
			}
			for _, o := range opts {
				fd.Options = append(fd.Options, option{Value: o, Selected: o == cur})
			}
		}
		if fd.Input != "password" && fd.Input != "select" {
			if given {
				fd.Value = v
			} else if def.HasDefault {
				fd.Placeholder = def.Default
			}
		}
		f.Fields = append(f.Fields, fd)
	}
	return f
}

// scopeRunForm is the project and environment the Run form names.
func (h *handlers) scopeRunForm(r *http.Request) (auth.Scope, error) {
	rb := r.PostFormValue("runbook")
	if rb == "" {
		return auth.Scope{}, server.BadRequest("the form needs a runbook")
	}
	return auth.Scope{Project: h.s.Catalog().ProjectOf(rb), Environment: r.PostFormValue("environment")}, nil
}

// startRun validates the form with the engine's validator (the same one
// the CLI and the API use) and starts the run; problems are shown next to
// their fields.
func (h *handlers) startRun(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	rel := r.PostFormValue("runbook")
	e, ok := h.s.Catalog().Get(rel)
	if !ok {
		return server.Errorf(http.StatusNotFound, "not_found", "runbook %s is not in the workspace", rel)
	}
	given := map[string]string{}
	for _, def := range e.Doc.Front.Params {
		v := r.PostFormValue("param_" + def.Name)
		// An empty field means "not given", as omitting a --param does on
		// the command line: the default applies, or a required one is missing.
		if v == "" {
			continue
		}
		given[def.Name] = v
	}
	env := r.PostFormValue("environment")
	reason := strings.TrimSpace(r.PostFormValue("emergency_reason"))
	req := server.StartRequest{Runbook: rel, Environment: env, Params: given, Emergency: reason}
	run, err := h.s.StartRun(r.Context(), p, req, h.s.RemoteAddr(r))
	if err == nil {
		redirect(w, r, "/runs/"+run.ID)
		return nil
	}
	fieldErrs := paramErrors(err)
	var apiErr *server.Error
	if len(fieldErrs) == 0 && !errors.As(err, &apiErr) && !errors.Is(err, auth.ErrForbidden) {
		return err
	}
	if errors.Is(err, auth.ErrForbidden) {
		return err // the error page says what permission is missing
	}
	pg := h.newPage(r, e.Title, "overview", nil)
	f := h.newRunForm(p, e, given)
	if f == nil {
		return err
	}
	f.Env, f.EmergencyReason = env, reason
	f.Rollback = r.PostFormValue("form") == "rollback"
	for i := range f.Fields {
		f.Fields[i].Error = fieldErrs[f.Fields[i].Name]
		delete(fieldErrs, f.Fields[i].Name)
	}
	if len(fieldErrs) > 0 || apiErr != nil {
		f.Error = err.Error()
	} else {
		f.Error = pg.T("fix_fields")
	}
	pg.Data = runbookData{Entry: e, Form: f}
	if !isHTMX(r) {
		return h.renderFormPage(w, r, e, pg)
	}
	return h.renderTemplate(w, http.StatusUnprocessableEntity, "runbook", "runform", pg)
}

// renderFormPage re-renders the whole runbook page with the form's errors
// (forms submitted without htmx).
func (h *handlers) renderFormPage(w http.ResponseWriter, r *http.Request, e *server.Entry, pg *page) error {
	d := pg.Data.(runbookData)
	full := runbookData{Entry: e, Front: e.Doc.Front, Steps: e.Doc.Steps, HTML: template.HTML(e.HTML()), Diagnostics: e.Diagnostics, Form: d.Form, Review: h.reviewOf(e.Path)}
	if pub, err := h.s.Store().Published(r.Context(), e.Path); err == nil {
		full.Published = &pub
	}
	pg.Data = full
	return h.render(w, http.StatusUnprocessableEntity, "runbook", pg)
}

// paramErrors maps each invalid parameter to its message, walking
// wrapped and joined errors (the validator reports all problems at once).
func paramErrors(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		if pe, ok := err.(*runbook.ParamError); ok {
			out[pe.Name] = pe.Message
			return
		}
		if u := errors.Unwrap(err); u != nil {
			walk(u)
		}
	}
	walk(err)
	return out
}
