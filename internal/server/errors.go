package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sync/atomic"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/engine"
	"github.com/opsbook/opsbook/internal/runbook"
	"github.com/opsbook/opsbook/internal/store"
)

// Error is an API error with its HTTP status and a stable code. Handlers
// return it (or domain and store errors, mapped by statusOf) and never
// write error responses themselves.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf makes an API error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 with code "bad_request".
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, "bad_request", format, args...)
}

// statusOf is the one place that maps errors to HTTP statuses.
func statusOf(err error) *Error {
	var apiErr *Error
	var paramsErr *engine.ParamsError
	var paramErr *runbook.ParamError
	var unfinished *engine.UnfinishedError
	var lostOutputs *engine.LostOutputsError
	var ambiguous *store.AmbiguousIDError
	if e := webhookStatus(err); e != nil {
		return e
	}
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, auth.ErrUnauthenticated):
		return &Error{http.StatusUnauthorized, "unauthenticated", err.Error()}
	case errors.Is(err, auth.ErrCSRF):
		return &Error{http.StatusForbidden, "csrf", err.Error()}
	case errors.Is(err, auth.ErrForbidden):
		return &Error{http.StatusForbidden, "forbidden", err.Error()}
	case errors.As(err, &paramsErr), errors.As(err, &paramErr):
		return &Error{http.StatusBadRequest, "invalid_params", err.Error()}
	case errors.As(err, &unfinished):
		return &Error{http.StatusBadRequest, "unfinished_runbook", err.Error()}
	case errors.As(err, &lostOutputs):
		return &Error{http.StatusConflict, "outputs_lost", err.Error()}
	case errors.As(err, &ambiguous):
		return &Error{http.StatusBadRequest, "ambiguous_id", err.Error()}
	case errors.Is(err, store.ErrNotFound):
		return &Error{http.StatusNotFound, "not_found", err.Error()}
	case errors.Is(err, store.ErrConflict):
		return &Error{http.StatusConflict, "conflict", err.Error()}
	case errors.Is(err, store.ErrLocked):
		return &Error{http.StatusConflict, "locked", err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return &Error{http.StatusBadRequest, "invalid", err.Error()}
	}
	return nil
}

// WriteError writes err as {"error":{"code","message"}}. Errors that map
// to no status are 500s whose details go to the log, not to the client.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, err error) {
	e := statusOf(err)
	if e == nil {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &Error{http.StatusInternalServerError, "internal", "internal error; the server log has the details"}
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
func DecodeJSON(r *http.Request, v any) error {
	if fn := decodeObserver.Load(); fn != nil {
		(*fn)(r.Pattern, reflect.TypeOf(v).Elem())
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	dec.DisallowUnknownFields()
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
