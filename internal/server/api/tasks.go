package api

import (
	"net/http"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/lifecycle/gates"
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

// taskReviewsView is what the server knows of a task's review: the
// verified reviews and ticks, and the gates a run in Environment is held to.
type taskReviewsView struct {
	Task string `json:"task"`
	// Snapshot is the task's current review snapshot; reviews of another
	// snapshot are stale.
	Snapshot string `json:"snapshot"`
	// Author is who created the task (git's user.email in its lifecycle
	// record); the user of that name, or of its part before the @, may not
	// approve.
	Author string `json:"author,omitempty"`
	// Reviews are the reviews by signed-in users, one per user per snapshot.
	Reviews []store.TaskReview `json:"reviews"`
	// Ticks are the checklist items signed-in users (or the server) ticked
	// or unticked, one state per item.
	Ticks []store.TaskTick `json:"ticks"`
	// Environment is the protected environment the gates are for.
	Environment string `json:"environment"`
	// Gates are the task's gates there, as a run through this server would
	// be held to them.
	Gates []gates.Gate `json:"gates"`
	// Approvers are the signed-in users whose approval of Snapshot counts.
	Approvers []string `json:"approvers"`
}

func (h *handlers) taskView(r *http.Request, name string) (taskReviewsView, error) {
	t, err := h.s.LoadTask(name)
	if err != nil {
		return taskReviewsView{}, err
	}
	ctx := r.Context()
	v := taskReviewsView{Task: t.Name, Snapshot: t.Snapshot, Author: t.Author, Approvers: []string{}, Gates: []gates.Gate{}}
	if v.Reviews, err = h.s.Store().ListTaskReviews(ctx, t.Name); err != nil {
		return v, err
	}
	if v.Ticks, err = h.s.Store().ListTaskTicks(ctx, t.Name); err != nil {
		return v, err
	}
	rep, err := h.s.TaskReport(ctx, t, "")
	if err != nil {
		return v, err
	}
	v.Environment = rep.Environment
	if rep.Gates != nil {
		v.Gates = rep.Gates
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

type reviewRequest struct {
	// Verdict is approve or request-changes.
	Verdict string `json:"verdict" api:"required"`
	// Comment is what the review says; required with request-changes.
	Comment string `json:"comment,omitempty"`
	// Snapshot, when set, must be the task's current snapshot: the
	// reviewer approves exactly what they read.
	Snapshot string `json:"snapshot,omitempty"`
}

// reviewResult is the recorded review and where the task stands now.
type reviewResult struct {
	Review store.TaskReview `json:"review"`
	// Replaced says the user's earlier review of this snapshot was replaced
	// (it counts once).
	Replaced bool            `json:"replaced"`
	Task     taskReviewsView `json:"task"`
}

func (h *handlers) reviewTask(w http.ResponseWriter, r *http.Request) error {
	var req reviewRequest
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
	server.WriteJSON(w, status, reviewResult{Review: rv, Replaced: replaced, Task: v})
	return nil
}

type tickRequest struct {
	// Uncheck unticks the item instead.
	Uncheck bool `json:"uncheck,omitempty"`
	// Note is the evidence or remark recorded with the tick.
	Note string `json:"note,omitempty"`
}

func (h *handlers) tickTask(w http.ResponseWriter, r *http.Request) error {
	var req tickRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	tk, err := h.s.TickTask(r, principal(r), r.PathValue("task"), r.PathValue("item"), !req.Uncheck, req.Note)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, tk)
	return nil
}
