package server

import "net/http"

// ErrorPageFunc renders an error for a browser. It returns false to leave
// the request to the JSON error (API calls, non-HTML clients).
type ErrorPageFunc func(w http.ResponseWriter, r *http.Request, e *Error) bool

// SetErrorPage installs the HTML UI's error renderer; call it before
// serving. WriteError consults it before writing JSON.
func (s *Server) SetErrorPage(f ErrorPageFunc) { s.errorPage = f }
