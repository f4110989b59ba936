package ui

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func (h *handlers) registerBoard() {
	h.s.Handle("GET /board", auth.NeedSomewhere(auth.RunbookView), "UI: planned operations by lifecycle state, with what each still needs", h.board)
	h.s.Handle("POST /board/tasks/{task}/review", auth.Need(auth.RunbookApprove, h.scopeTask),
		"UI: review a planned operation's current snapshot as the signed-in user", h.reviewTask)
	h.s.Handle("POST /board/tasks/{task}/checklist/{item}", auth.Need(auth.RunbookRun, h.scopeTask),
		"UI: tick or untick a planned operation's pre-execution checklist item as the signed-in user", h.tickTask)
}

// scopeTask is the task's project and the protected environment its
// reviews and ticks open (server.TaskScope, as for the API).
func (h *handlers) scopeTask(r *http.Request) (auth.Scope, error) {
	return h.s.TaskScope(r.PathValue("task"))
}

func (h *handlers) reviewTask(w http.ResponseWriter, r *http.Request) error {
	verdict := r.PostFormValue("verdict")
	_, _, err := h.s.ReviewTask(r, principal(r), r.PathValue("task"), verdict, strings.TrimSpace(r.PostFormValue("comment")), r.PostFormValue("snapshot"))
	if err != nil {
		return err
	}
	redirect(w, r, "/board?flash=review_recorded#task-"+r.PathValue("task"))
	return nil
}

func (h *handlers) tickTask(w http.ResponseWriter, r *http.Request) error {
	ticked := r.PostFormValue("uncheck") == ""
	if _, err := h.s.TickTask(r, principal(r), r.PathValue("task"), r.PathValue("item"), ticked, strings.TrimSpace(r.PostFormValue("note"))); err != nil {
		return err
	}
	redirect(w, r, "/board?flash=tick_recorded#task-"+r.PathValue("task"))
	return nil
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
	Review  *boardReview // nil: no protected environment, or the task is done
}

// boardReview is a task's review and checklist in the protected
// environment, as the server counts them (verified records only), with
// what the signed-in user may do about them.
type boardReview struct {
	Environment string
	Snapshot    string
	Short       string
	Reviews     string // the reviews gate's detail; "" when none is required
	Approvers   []string
	Mine        string // the user's own verdict on the current snapshot, if any
	Items       []gates.Item
	CanReview   bool
	CanTick     bool
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
			if task, err := gates.Load(ws, t.Dir); err != nil {
				bt.Needs = []string{err.Error()}
			} else {
				bt.Needs = h.needs(ctx, ws, task, rb)
				bt.Review = h.review(r, p, task)
			}
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
func (h *handlers) needs(ctx context.Context, ws *workspace.Workspace, task *gates.Task, rb string) []string {
	runs, err := h.s.Store().ListRuns(ctx, store.RunFilter{Runbook: rb, Limit: store.MaxRunLimit})
	if err != nil {
		return []string{err.Error()}
	}
	verified, err := h.s.Store().VerifiedRecords(ctx, task.Name)
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

// review is what the board shows of a task's verified review and
// checklist in the workspace's protected environment; nil when there is
// none (needs then says why, if it is an error).
func (h *handlers) review(r *http.Request, p *auth.Principal, t *gates.Task) *boardReview {
	scope, err := h.s.TaskScope(t.Name)
	if err != nil {
		return nil
	}
	rep, err := h.s.TaskReport(r.Context(), t, "")
	if err != nil || !rep.Protected {
		return nil
	}
	br := &boardReview{Environment: rep.Environment, Snapshot: t.Snapshot, Short: rep.Short, Items: rep.Checklist,
		CanReview: p.Can(auth.RunbookApprove, scope) && !gates.IsAuthor(p.Name, t.Author) && !p.Service,
		CanTick:   p.Can(auth.RunbookRun, scope)}
	for _, g := range rep.Gates {
		if g.ID == gates.GateReviews {
			br.Reviews = g.Detail
		}
	}
	for _, a := range rep.Reviews.Approvers {
		br.Approvers = append(br.Approvers, a.Actor)
	}
	for _, e := range rep.Reviews.History {
		if !e.Stale && e.Actor == p.Name {
			br.Mine = e.Verdict
		}
	}
	return br
}
