package api

import (
	"github.com/opsbook/opsbook/internal/apitypes"
	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

// Contract is what one /api/v1 route reads and writes, as Go values whose
// types the handler decodes and encodes. openapi.json is generated from
// these types (OpenAPI), so the document cannot drift from the handlers:
// TestOpenAPI fails when a route has no contract, when the document on
// disk differs from the generated one, when a handler decodes another type
// than its contract says, and when a real response does not match.
type Contract struct {
	Query []Param // query parameters
	// Request is a zero value of the JSON request body's type; nil: the
	// route reads no body.
	Request any
	// Responses maps each success status to a zero value of its JSON
	// body's type; a nil value means no body. Errors are always the Error
	// schema and need no entry.
	Responses map[int]any
}

// Param is a query parameter.
type Param struct {
	Name, Description string
	Type              string // "string" (default), "integer", "boolean"
	Repeated          bool   // may be given several times (?status=a&status=b)
}

// EventStream marks a text/event-stream response: one SSE event per run
// event (id: seq, event: type, data: the Event as JSON), then "end".
type EventStream struct{}

// OpenAPIDoc marks the answer of GET /api/v1/openapi.json.
type OpenAPIDoc map[string]any

var (
	limit  = Param{Name: "limit", Type: "integer", Description: "page size"}
	cursor = Param{Name: "cursor", Description: "next_cursor of the previous page"}
	envQ   = Param{Name: "environment", Description: "the variable's environment; none: the variable of every environment"}
)

func ok(v any) map[int]any      { return map[int]any{200: v} }
func created(v any) map[int]any { return map[int]any{201: v} }

var noContent = map[int]any{204: nil}

// Contracts holds the contract of every /api/v1 route, by its pattern as
// registered with server.Handle. A route added without one fails
// TestOpenAPIContracts, which prints the entry to add.
var Contracts = map[string]Contract{
	"GET /api/v1/openapi.json": {Responses: ok(OpenAPIDoc{})},

	"POST /api/v1/login":  {Request: apitypes.LoginRequest{}, Responses: ok(apitypes.LoginResponse{})},
	"POST /api/v1/logout": {Responses: noContent},
	"GET /api/v1/session": {Responses: ok(sessionView{})},

	"GET /api/v1/projects":     {Responses: ok(Page[string]{})},
	"GET /api/v1/environments": {Responses: ok(Page[environmentView]{})},
	"GET /api/v1/runbooks": {Query: []Param{{Name: "project", Description: "only this project's runbooks"}, {Name: "tag", Description: "only runbooks with this tag"}},
		Responses: ok(Page[runbookView]{})},
	"GET /api/v1/runbooks/{path...}": {Responses: ok(runbookDetail{})},
	"POST /api/v1/workspace/sync":    {Responses: ok(syncResult{})},

	"POST /api/v1/snapshots":       {Request: publishRequest{}, Responses: created(store.Publication{})},
	"GET /api/v1/snapshots/{hash}": {Responses: ok(store.Snapshot{})},

	"GET /api/v1/variables":           {Query: []Param{{Name: "environment", Description: "only this environment's variables (and those of every environment)"}}, Responses: ok(Page[variableView]{})},
	"PUT /api/v1/variables/{name}":    {Query: []Param{envQ}, Request: setVariableRequest{}, Responses: ok(variableView{})},
	"DELETE /api/v1/variables/{name}": {Query: []Param{envQ}, Responses: noContent},

	"GET /api/v1/runs": {Query: []Param{
		{Name: "runbook", Description: "runbook path"}, {Name: "environment"}, {Name: "task", Description: "planned-operation task"},
		{Name: "status", Repeated: true, Description: "pending, running, waiting, succeeded, failed, rolled_back, cancelled or interrupted"},
		cursor, limit}, Responses: ok(Page[runbook.Run]{})},
	"POST /api/v1/runs":                   {Request: apitypes.StartRequest{}, Responses: created(runbook.Run{})},
	"GET /api/v1/runs/{id}":               {Responses: ok(apitypes.RunDetail{})},
	"GET /api/v1/runs/{id}/events":        {Query: []Param{{Name: "after", Type: "integer", Description: "events after this sequence number (next_after of the previous page)"}, limit}, Responses: ok(apitypes.EventPage{})},
	"GET /api/v1/runs/{id}/events/stream": {Query: []Param{{Name: "after", Type: "integer", Description: "events after this sequence number (or the Last-Event-ID header)"}}, Responses: ok(EventStream{})},
	"POST /api/v1/runs/{id}/cancel":       {Request: apitypes.ReasonRequest{}, Responses: map[int]any{202: nil}},
	"POST /api/v1/runs/{id}/resume":       {Request: apitypes.ResumeRequest{}, Responses: map[int]any{202: nil}},
	"POST /api/v1/runs/{id}/gate":         {Request: apitypes.GateRequest{}, Responses: ok(runbook.Event{})},
	"POST /api/v1/runs/{id}/answer":       {Request: apitypes.AnswerRequest{}, Responses: ok(runbook.Event{})},
	"POST /api/v1/runs/{id}/notes":        {Request: apitypes.NoteRequest{}, Responses: created(runbook.Event{})},
	"POST /api/v1/runs/reported":          {Request: apitypes.ReportRequest{}, Responses: created(runbook.Run{})},
	"POST /api/v1/runs/{id}/events":       {Request: apitypes.ReportEventsRequest{}, Responses: ok(apitypes.ReportEventsResponse{})},

	"GET /api/v1/tasks/{task}/reviews":           {Responses: ok(apitypes.TaskReviews{})},
	"POST /api/v1/tasks/{task}/reviews":          {Request: apitypes.ReviewRequest{}, Responses: map[int]any{200: apitypes.ReviewResult{}, 201: apitypes.ReviewResult{}}},
	"POST /api/v1/tasks/{task}/checklist/{item}": {Request: apitypes.TickRequest{}, Responses: ok(apitypes.TaskTick{})},

	"GET /api/v1/users":                          {Responses: ok(Page[store.User]{})},
	"POST /api/v1/users":                         {Request: server.UserSpec{}, Responses: created(store.User{})},
	"GET /api/v1/users/{name}":                   {Responses: ok(store.User{})},
	"PATCH /api/v1/users/{name}":                 {Request: updateUserRequest{}, Responses: ok(store.User{})},
	"DELETE /api/v1/users/{name}":                {Responses: noContent},
	"GET /api/v1/teams":                          {Responses: ok(Page[store.Team]{})},
	"POST /api/v1/teams":                         {Request: createTeamRequest{}, Responses: created(store.Team{})},
	"DELETE /api/v1/teams/{name}":                {Responses: noContent},
	"PUT /api/v1/teams/{name}/members/{user}":    {Responses: noContent},
	"DELETE /api/v1/teams/{name}/members/{user}": {Responses: noContent},
	"POST /api/v1/grants":                        {Request: auth.Grant{}, Responses: created(auth.Grant{})},
	"DELETE /api/v1/grants/{id}":                 {Responses: noContent},

	"GET /api/v1/apikeys":         {Query: []Param{{Name: "all", Type: "boolean", Description: "administrators: everyone's keys"}}, Responses: ok(Page[store.APIKey]{})},
	"POST /api/v1/apikeys":        {Request: apitypes.CreateAPIKeyRequest{}, Responses: created(createdAPIKey{})},
	"DELETE /api/v1/apikeys/{id}": {Responses: noContent},

	"GET /api/v1/triggers":                   {Responses: ok(Page[store.Trigger]{})},
	"POST /api/v1/triggers":                  {Request: server.TriggerSpec{}, Responses: created(createdTrigger{})},
	"DELETE /api/v1/triggers/{name}":         {Responses: noContent},
	"POST /api/v1/hooks/{name}":              {Request: webhookBody{}, Responses: map[int]any{202: runbook.Run{}}},
	"POST /api/v1/hooks/{name}/alertmanager": {Request: server.AlertmanagerPayload{}, Responses: map[int]any{202: server.AlertOutcome{}}},

	"GET /api/v1/audit": {Query: []Param{{Name: "actor"}, {Name: "action"}, {Name: "target"}, cursor, limit},
		Responses: ok(Page[audit.Entry]{})},
	"GET /api/v1/audit/verify": {Responses: ok(apitypes.AuditVerification{})},
	"POST /api/v1/retention":   {Request: retentionRequest{}, Responses: ok(retentionResult{})},
}
