// Package apitypes holds the JSON bodies of the /api/v1 routes that both
// sides read: the server's handlers decode and encode them and the CLI's
// client (internal/client) sends and reads the same types, so the two
// cannot disagree on a field. The OpenAPI document's schemas are generated
// from these types (internal/server/api, go test -run TestOpenAPI -update).
// It depends on the domain packages only, never on the server.
//
// A field tagged `api:"required"` must be present in a request body; the
// server answers 400 without it. Response schemas mark every field that is
// not omitempty/omitzero as required, since the encoder always writes it.
package apitypes

import (
	"slices"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/lifecycle"
	"github.com/opsbook/opsbook/internal/runbook"
)

// Page is a page of a list with the cursor of the next one ("" at the end):
// pass it as ?cursor= for the next page.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Name     string `json:"name" api:"required"`
	Password string `json:"password" api:"required"`
}

// LoginResponse is the answer of POST /api/v1/login; the session itself is
// the opsbook_session cookie, and unsafe requests made with it carry
// CSRFToken in the X-CSRF-Token header.
type LoginResponse struct {
	User      string    `json:"user"`
	CSRFToken string    `json:"csrf_token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// StartRequest is the body of POST /api/v1/runs.
type StartRequest struct {
	Runbook     string            `json:"runbook" api:"required"` // path relative to the workspace
	Environment string            `json:"environment" api:"required"`
	Params      map[string]string `json:"params,omitempty"`
	// Snapshot picks the content: "published" (the default for callers
	// without RunbookEdit, and the only choice for them), "current" (the
	// workspace as it is now) or a snapshot hash.
	Snapshot string `json:"snapshot,omitempty"`
	From     string `json:"from,omitempty"` // step id to start from
	// Emergency is the reason for an emergency run: it waives a task's
	// change window and freeze gates, for runbooks with change: emergency
	// only, and is recorded on the run and in the task's lifecycle file.
	Emergency string `json:"emergency,omitempty"`
}

// RunDetail is a run with its state derived from the event log (GET
// /api/v1/runs/{id}).
type RunDetail struct {
	runbook.Run
	Project string            `json:"project"`
	State   *runbook.RunState `json:"state"`
	// StepTitles maps each step's label (its id; rollback/<id> for the
	// rollback document's steps) to its heading in the documents the run
	// froze, for clients that show steps by title.
	StepTitles map[string]string `json:"step_titles,omitempty"`
}

// EventPage is a page of a run's events (GET /api/v1/runs/{id}/events).
type EventPage struct {
	Events []runbook.Event   `json:"events"`
	Next   int64             `json:"next_after"` // pass as ?after= for the next page
	Status runbook.RunStatus `json:"status"`
	More   bool              `json:"more"` // a full page: more events may follow at once
}

// ReasonRequest is the body of POST /api/v1/runs/{id}/cancel.
type ReasonRequest struct {
	Reason string `json:"reason"`
}

// ResumeRequest is the body of POST /api/v1/runs/{id}/resume.
type ResumeRequest struct {
	// RetryInterrupted answers the question about an interrupted step that
	// is not idempotent: retry, skip, abort or rollback (when the runbook
	// has a rollback document); empty asks (the run waits).
	RetryInterrupted string `json:"retry_interrupted,omitempty"`
}

// GateRequest is the body of POST /api/v1/runs/{id}/gate.
type GateRequest struct {
	Decision string `json:"decision" api:"required"` // go | no-go
	Reason   string `json:"reason"`
}

// AnswerRequest is the body of POST /api/v1/runs/{id}/answer.
type AnswerRequest struct {
	Kind   string `json:"kind" api:"required"` // manual | ask
	Choice string `json:"choice"`              // manual: confirmed (or empty); ask: retry | skip | abort | rollback, as offered
	Reason string `json:"reason,omitempty"`
}

// NoteRequest is the body of POST /api/v1/runs/{id}/notes.
type NoteRequest struct {
	Text string `json:"text" api:"required"`
}

// CreateAPIKeyRequest is the body of POST /api/v1/apikeys.
type CreateAPIKeyRequest struct {
	Name string `json:"name" api:"required"`
	// User, for administrators: whose key it is (e.g. a service identity).
	User string `json:"user,omitempty"`
	// ExpiresIn is a Go duration ("720h"); empty means no expiry.
	ExpiresIn string `json:"expires_in,omitempty"`
}

// APIKeySecret is the key itself, in the answer that creates it: shown
// this once, only its hash is stored.
type APIKeySecret struct {
	Key string `json:"key"`
}

// AuditVerification is the answer of GET /api/v1/audit/verify.
type AuditVerification struct {
	OK      bool           `json:"ok"`
	Checked int64          `json:"checked"`
	Head    int64          `json:"head"` // seq of the newest entry as the head row records it
	Problem *audit.Problem `json:"problem,omitempty"`
}

// ReviewRequest is the body of POST /api/v1/tasks/{task}/reviews.
type ReviewRequest struct {
	// Verdict is approve or request-changes.
	Verdict string `json:"verdict" api:"required"`
	// Comment is what the review says; required with request-changes.
	Comment string `json:"comment,omitempty"`
	// Snapshot, when set, must be the task's current snapshot: the
	// reviewer approves exactly what they read.
	Snapshot string `json:"snapshot,omitempty"`
}

// TickRequest is the body of POST /api/v1/tasks/{task}/checklist/{item}.
type TickRequest struct {
	// Uncheck unticks the item instead.
	Uncheck bool `json:"uncheck,omitempty"`
	// Note is the evidence or remark recorded with the tick.
	Note string `json:"note,omitempty"`
}

// TaskReview is a review of a planned operation's snapshot by a signed-in
// user of the server.
type TaskReview struct {
	Task     string `json:"task"`
	Snapshot string `json:"snapshot"`
	// Reviewer is the user's name.
	Reviewer string `json:"reviewer"`
	// Verdict is approve or request-changes.
	Verdict string    `json:"verdict"`
	Note    string    `json:"note,omitempty"`
	At      time.Time `json:"at"`
}

// TaskTick is the state of a pre-execution checklist item as the server's
// users (or the server itself, actor "opsbook") left it.
type TaskTick struct {
	Task   string    `json:"task"`
	Item   string    `json:"item"`
	Ticked bool      `json:"ticked"`
	Actor  string    `json:"actor"`
	Note   string    `json:"note,omitempty"`
	At     time.Time `json:"at"`
}

// TaskGate is one lifecycle gate of a task and whether it is met.
type TaskGate struct {
	ID      string `json:"id"`
	Title   string `json:"title"`
	Met     bool   `json:"met"`
	Detail  string `json:"detail"`
	Missing string `json:"missing,omitempty"`
}

// TaskReviews is what the server knows of a task's review (GET
// /api/v1/tasks/{task}/reviews): the verified reviews and ticks, and the
// gates a run through the server in Environment is held to.
type TaskReviews struct {
	Task string `json:"task"`
	// Snapshot is the task's current review snapshot; reviews of another
	// snapshot are stale.
	Snapshot string `json:"snapshot"`
	// Author is who created the task (git's user.email in its lifecycle
	// record); the user of that name, or of its part before the @, may not
	// approve.
	Author string `json:"author,omitempty"`
	// Reviews are the reviews by signed-in users, one per user per snapshot.
	Reviews []TaskReview `json:"reviews"`
	// Ticks are the checklist items signed-in users (or the server) ticked
	// or unticked, one state per item.
	Ticks []TaskTick `json:"ticks"`
	// Environment is the protected environment the gates are for (the
	// workspace's first).
	Environment string `json:"environment"`
	// Gates are the task's gates there.
	Gates []TaskGate `json:"gates"`
	// Approvers are the signed-in users whose approval of Snapshot counts.
	Approvers []string `json:"approvers"`
}

// ReviewResult is the answer of POST /api/v1/tasks/{task}/reviews: 201
// for a new review, 200 when it replaced the user's earlier one.
type ReviewResult struct {
	Review TaskReview `json:"review"`
	// Replaced says the user's earlier review of this snapshot was
	// replaced: a person's review counts once.
	Replaced bool        `json:"replaced"`
	Task     TaskReviews `json:"task"`
}

// Records returns the verified reviews and ticks as lifecycle records
// (Data["verified"] = "server"), oldest first: what gates.Options.Verified
// wants, so `opsbook status` judges a task as the server does.
func (v TaskReviews) Records() []lifecycle.Record {
	verified := map[string]string{"verified": "server"}
	var recs []lifecycle.Record
	for _, r := range v.Reviews {
		recs = append(recs, lifecycle.Record{Time: r.At, Type: lifecycle.Review, Actor: r.Reviewer, Snapshot: r.Snapshot,
			Verdict: r.Verdict, Note: r.Note, Data: verified})
	}
	for _, t := range v.Ticks {
		typ := lifecycle.Check
		if !t.Ticked {
			typ = lifecycle.Uncheck
		}
		recs = append(recs, lifecycle.Record{Time: t.At, Type: typ, Actor: t.Actor, Item: t.Item, Note: t.Note, Data: verified})
	}
	slices.SortStableFunc(recs, func(a, b lifecycle.Record) int { return a.Time.Compare(b.Time) })
	return recs
}

// ReportRequest is the body of POST /api/v1/runs/reported: a run that
// executes in the caller's own process (`opsbook run --local`) asks the
// server to keep its record. The server records the caller as who started
// it, never a name in the request.
type ReportRequest struct {
	// ID is the run's id in the reporter's store (r-…); the server's
	// record keeps it, so registering again after a lost answer is safe.
	ID          string            `json:"id" api:"required"`
	Runbook     string            `json:"runbook" api:"required"` // path relative to the workspace
	Environment string            `json:"environment" api:"required"`
	Task        string            `json:"task,omitempty"`
	Params      map[string]string `json:"params,omitempty"` // secret parameters are dropped by the server as well
	Emergency   string            `json:"emergency,omitempty"`
	// Snapshot is the reporter's snapshot hash (documents, parameters and
	// variable values); the server stores the documents under the hash of
	// their content, which it computes itself.
	Snapshot       string           `json:"snapshot,omitempty"`
	Source         string           `json:"source" api:"required"` // the runbook's Markdown as it runs
	RollbackPath   string           `json:"rollback_path,omitempty"`
	RollbackSource string           `json:"rollback_source,omitempty"`
	Called         []ReportedCalled `json:"called,omitempty"`
	CreatedAt      time.Time        `json:"created_at,omitzero"`
}

// ReportedCalled is a runbook a call step of a reported run names.
type ReportedCalled struct {
	Ref    string `json:"ref" api:"required"`  // as the call block writes it
	Path   string `json:"path" api:"required"` // relative to the workspace
	Source string `json:"source" api:"required"`
}

// ReportEventsRequest is the body of POST /api/v1/runs/{id}/events: events
// of a reported run in the reporter's order, each with the reporter's own
// seq (1, 2, 3…). Events the server has already are skipped, so a batch
// may be sent again; a gap is refused (409) with the seq to send from.
type ReportEventsRequest struct {
	Events []runbook.Event `json:"events" api:"required"`
}

// ReportEventsResponse says how far the server holds a reported run's log.
type ReportEventsResponse struct {
	Acked    int64 `json:"acked_seq"` // the reporter's seq of the last event the server holds
	Appended int   `json:"appended"`  // events of this batch that were new
}
