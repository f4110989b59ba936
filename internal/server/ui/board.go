package ui

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func (h *handlers) registerBoard() {
	h.s.Handle("GET /board", auth.NeedSomewhere(auth.RunbookView), "UI: planned operations by lifecycle state, with what each still needs", h.board)
}

// boardStates is the column order; states not listed go last.
var boardStates = []string{"planning", "in review", "approved", "executing", "failed", "rolled back", "completed"}

type boardData struct {
	Columns []boardColumn
	Error   string
}

type boardColumn struct {
	ID, State string
	Tasks     []boardTask
}

type boardTask struct {
	Task    workspace.Task
	Needs   []string
	Runbook string
}

func (h *handlers) board(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	ws := h.s.Catalog().Workspace()
	d := boardData{}
	tasks, err := ws.Tasks(false, h.s.Now())
	if err != nil {
		d.Error = err.Error()
	}
	cols := map[string]*boardColumn{}
	for i, st := range boardStates {
		d.Columns = append(d.Columns, boardColumn{ID: fmt.Sprint(i), State: st})
	}
	for i := range d.Columns {
		cols[d.Columns[i].State] = &d.Columns[i]
	}
	for _, t := range tasks {
		rb := path.Join(t.Dir, t.Name+"-runbook.md")
		project := h.s.Catalog().ProjectOf(rb)
		if !p.Can(auth.RunbookView, auth.Scope{Project: project}) {
			continue
		}
		bt := boardTask{Task: t}
		if _, ok := h.s.Catalog().Get(rb); ok {
			bt.Runbook = rb
		}
		if t.Lifecycle.Completed.IsZero() {
			bt.Needs = h.needs(ctx, ws, t, rb)
		}
		c, ok := cols[t.Lifecycle.State]
		if !ok {
			d.Columns = append(d.Columns, boardColumn{ID: fmt.Sprint(len(d.Columns)), State: t.Lifecycle.State})
			cols = map[string]*boardColumn{} // the slice may have moved
			for i := range d.Columns {
				cols[d.Columns[i].State] = &d.Columns[i]
			}
			c = cols[t.Lifecycle.State]
		}
		c.Tasks = append(c.Tasks, bt)
	}
	return h.render(w, http.StatusOK, "board", h.newPage(r, "nav_board", "board", d))
}

// needs lists what a task still lacks before production: the unmet gates
// of each protected environment (reviews, rehearsal, checklist, window,
// freeze), evaluated by lifecycle/gates as `opsbook status` and `opsbook
// run` evaluate them, with the server's runs of the task counted too.
func (h *handlers) needs(ctx context.Context, ws *workspace.Workspace, t workspace.Task, rb string) []string {
	task, err := gates.Load(ws, t.Dir)
	if err != nil {
		return []string{err.Error()}
	}
	runs, err := h.s.Store().ListRuns(ctx, store.RunFilter{Runbook: rb, Limit: store.MaxRunLimit})
	if err != nil {
		return []string{err.Error()}
	}
	verified, err := h.s.Store().VerifiedRecords(ctx, t.Name)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, env := range ws.Config.Environments {
		if !env.Protected {
			continue
		}
		rep, err := task.Evaluate(env.Name, h.s.Now(), gates.Options{StoreRuns: runs, Verified: &gates.Verified{Records: verified}})
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for _, g := range rep.Gates {
			if !g.Passes() {
				out = append(out, fmt.Sprintf("%s: %s: %s", env.Name, g.Title, g.Missing))
			}
		}
	}
	return slices.Clip(out)
}
