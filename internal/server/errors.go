package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/runs"
	"github.com/opsbook/opsbook/internal/store"
)

// Error is an API error with its HTTP status and a stable code (the run
// service's refusal, runs.Error). Handlers return it (or domain and store
// errors, mapped by statusOf) and never write error responses themselves.
type Error = runs.Error

// Errorf makes an API error.
func Errorf(status int, code, format string, args ...any) *Error {
	return runs.Errorf(status, code, format, args...)
}

// BadRequest is a 400 with code "bad_request".
func BadRequest(format string, args ...any) *Error { return runs.BadRequest(format, args...) }

// statusOf is the one place that maps errors to HTTP statuses.
func statusOf(err error) *Error {
	var apiErr *Error
	var paramsErr *engine.ParamsError
	var docErr *engine.DocumentError
	var paramErr *runbook.ParamError
	var unfinished *engine.UnfinishedError
	var guardErr *engine.GuardError
	var lostOutputs *engine.LostOutputsError
	var ambiguous *store.AmbiguousIDError
	if e := webhookStatus(err); e != nil {
		return e
	}
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, auth.ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: err.Error()}
	case errors.Is(err, auth.ErrCSRF):
		return &Error{Status: http.StatusForbidden, Code: "csrf", Message: err.Error()}
	case errors.Is(err, auth.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: err.Error()}
	case errors.As(err, &paramsErr), errors.As(err, &paramErr):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_params", Message: err.Error()}
	case errors.As(err, &docErr):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_runbook", Message: err.Error()}
	case errors.As(err, &guardErr):
		return &Error{Status: http.StatusConflict, Code: "guards_unavailable", Message: err.Error()}
	case errors.As(err, &unfinished):
		return &Error{Status: http.StatusBadRequest, Code: "unfinished_runbook", Message: err.Error()}
	case errors.As(err, &lostOutputs):
		return &Error{Status: http.StatusConflict, Code: "outputs_lost", Message: err.Error()}
	case errors.As(err, &ambiguous):
		return &Error{Status: http.StatusBadRequest, Code: "ambiguous_id", Message: err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: err.Error()}
	case errors.Is(err, store.ErrLocked):
		return &Error{Status: http.StatusConflict, Code: "locked", Message: err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: err.Error()}
	}
	return nil
}

// WriteError writes err as {"error":{"code","message"}}. Errors that map
// to no status are 500s whose details go to the log, not to the client.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := statusOf(err)
	if e == nil {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error; the server log has the details"}
	}
	if s.errorPage != nil && s.errorPage(w, r, e) {
		return
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="opsbook"`)
	}
	WriteJSON(w, e.Status, map[string]*Error{"error": e})
}

// WriteJSON writes v as a JSON response.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		slog.Debug("write response", "err", err)
	}
}

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// decodeObserver, when set, learns which Go type each route decodes; the
// OpenAPI test compares it with the route's contract (internal/server/api).
var decodeObserver atomic.Pointer[func(pattern string, t reflect.Type)]

// ObserveDecoding makes DecodeJSON call fn with the route pattern and the
// type of every body it decodes. For tests; nil stops.
func ObserveDecoding(fn func(pattern string, t reflect.Type)) {
	if fn == nil {
		decodeObserver.Store(nil)
		return
	}
	decodeObserver.Store(&fn)
}

// DecodeJSON reads a JSON request body into v, refusing unknown fields and
// trailing data, so a typo in a field name is an error rather than ignored.
func DecodeJSON(r *http.Request, v any) error { return decodeJSON(r, v, true) }

// DecodeForeignJSON is DecodeJSON for a body another system defines
// (Alertmanager's webhook): fields it adds in a later version are ignored
// rather than refused, so an upgrade of the sender does not stop alerts.
func DecodeForeignJSON(r *http.Request, v any) error { return decodeJSON(r, v, false) }

func decodeJSON(r *http.Request, v any, strict bool) error {
	if fn := decodeObserver.Load(); fn != nil {
		(*fn)(r.Pattern, reflect.TypeOf(v).Elem())
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return BadRequest("the request needs a JSON body")
		}
		return BadRequest("request body: %v", err)
	}
	if dec.More() {
		return BadRequest("request body: unexpected data after the JSON value")
	}
	return nil
}
