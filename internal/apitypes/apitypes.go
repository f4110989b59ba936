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
	"time"

	"github.com/opsbook/opsbook/internal/audit"
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
	// is not idempotent: retry, skip or abort; empty asks (the run waits).
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
