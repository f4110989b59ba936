package api

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerTasks() {
	h.s.Handle("GET /api/v1/tasks/{task}/reviews", auth.Need(auth.RunbookView, h.scopeTask),
		"A planned operation's verified reviews and checklist ticks, and its gates in the protected environment", h.taskReviews)
	h.s.Handle("POST /api/v1/tasks/{task}/reviews", auth.Need(auth.RunbookApprove, h.scopeTask),
		"Review a planned operation's current snapshot as the signed-in user", h.reviewTask)
	h.s.Handle("POST /api/v1/tasks/{task}/checklist/{item}", auth.Need(auth.RunbookRun, h.scopeTask),
		"Tick (or untick) a pre-execution checklist item of a planned operation as the signed-in user", h.tickTask)
}

// scopeTask is the project of the task named by {task} and the workspace's
// protected environment, whose gates its reviews and ticks open.
func (h *handlers) scopeTask(r *http.Request) (auth.Scope, error) {
	return h.s.TaskScope(r.PathValue("task"))
}

func (h *handlers) taskView(r *http.Request, name string) (apitypes.TaskReviews, error) {
	t, err := h.s.LoadTask(name)
	if err != nil {
		return apitypes.TaskReviews{}, err
	}
	ctx := r.Context()
	v := apitypes.TaskReviews{Task: t.Name, Snapshot: t.Snapshot, Author: t.Author, Approvers: []string{}, Gates: []apitypes.TaskGate{}}
	reviews, err := h.s.Store().ListTaskReviews(ctx, t.Name)
	if err != nil {
		return v, err
	}
	v.Reviews = make([]apitypes.TaskReview, 0, len(reviews))
	for _, r := range reviews {
		v.Reviews = append(v.Reviews, reviewOf(r))
	}
	ticks, err := h.s.Store().ListTaskTicks(ctx, t.Name)
	if err != nil {
		return v, err
	}
	v.Ticks = make([]apitypes.TaskTick, 0, len(ticks))
	for _, tk := range ticks {
		v.Ticks = append(v.Ticks, tickOf(tk))
	}
	rep, err := h.s.TaskReport(ctx, t, "")
	if err != nil {
		return v, err
	}
	v.Environment = rep.Environment
	for _, g := range rep.Gates {
		v.Gates = append(v.Gates, apitypes.TaskGate{ID: g.ID, Title: g.Title, Met: g.Passes(), Detail: g.Detail, Missing: g.Missing})
	}
	for _, a := range rep.Reviews.Approvers {
		if a.Data["verified"] != "" {
			v.Approvers = append(v.Approvers, a.Actor)
		}
	}
	return v, nil
}

func (h *handlers) taskReviews(w http.ResponseWriter, r *http.Request) error {
	v, err := h.taskView(r, r.PathValue("task"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (h *handlers) reviewTask(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.ReviewRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	rv, replaced, err := h.s.ReviewTask(r, principal(r), r.PathValue("task"), req.Verdict, req.Comment, req.Snapshot)
	if err != nil {
		return err
	}
	v, err := h.taskView(r, rv.Task)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if replaced {
		status = http.StatusOK
	}
	server.WriteJSON(w, status, apitypes.ReviewResult{Review: reviewOf(rv), Replaced: replaced, Task: v})
	return nil
}

func (h *handlers) tickTask(w http.ResponseWriter, r *http.Request) error {
	var req apitypes.TickRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	tk, err := h.s.TickTask(r, principal(r), r.PathValue("task"), r.PathValue("item"), !req.Uncheck, req.Note)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, tickOf(tk))
	return nil
}

func reviewOf(r store.TaskReview) apitypes.TaskReview {
	return apitypes.TaskReview{Task: r.Task, Snapshot: r.Snapshot, Reviewer: r.Reviewer, Verdict: r.Verdict, Note: r.Note, At: r.At}
}

func tickOf(t store.TaskTick) apitypes.TaskTick {
	return apitypes.TaskTick{Task: t.Task, Item: t.Item, Ticked: t.Ticked, Actor: t.Actor, Note: t.Note, At: t.At}
}
