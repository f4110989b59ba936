package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "opsbook_session"

type routeKey struct{}

// routeHolder lets the innermost handler tell the logging middleware which
// route pattern served the request (for logs and metric labels).
type routeHolder struct{ path string }

func setRoute(r *http.Request, path string) {
	if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
		h.path = path
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// Flush lets SSE handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withLogging logs every request with slog and counts it for /metrics.
// Panics in handlers become 500s instead of killing the connection
// silently.
func (s *Server) withLogging(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder := &routeHolder{}
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, holder))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				if sw.status == 0 {
					s.WriteError(sw, r, errors.New("handler panicked"))
				}
			}
			route := holder.path
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.httpRequests.With(r.Method, route, strconv.Itoa(status)).Inc()
			s.metrics.httpDuration.With(r.Method, route).Observe(elapsed.Seconds())
			user := ""
			if p := auth.FromContext(r.Context()); p != nil {
				user = p.Name
			}
			s.log.Info("http", "method", r.Method, "path", r.URL.Path, "route", route, "status", status,
				"bytes", sw.bytes, "ms", float64(elapsed.Microseconds())/1000, "user", user, "remote", s.RemoteAddr(r))
		}()
		// The principal is resolved here, outside the mux, so the log line
		// above can name the user.
		p, err := s.authenticate(r)
		if err != nil {
			s.WriteError(sw, r, err)
			return
		}
		if p != nil {
			*r = *r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		if _, pattern := s.mux.Handler(r); pattern == "" {
			// No route: the mux would answer in plain English text. Its 404
			// and 405 go through WriteError instead, so a browser gets the
			// page in its language with a way out, and an API client JSON.
			uw := &unroutedWriter{ResponseWriter: sw}
			next.ServeHTTP(uw, r)
			switch uw.status {
			case http.StatusNotFound:
				s.WriteError(sw, r, Errorf(http.StatusNotFound, "not_found", "nothing is at %s", r.URL.Path))
			case http.StatusMethodNotAllowed:
				s.WriteError(sw, r, Errorf(http.StatusMethodNotAllowed, "method_not_allowed", "%s is not allowed on %s (allowed: %s)",
					r.Method, r.URL.Path, sw.Header().Get("Allow")))
			}
			return
		}
		next.ServeHTTP(sw, r)
	})
}

// unroutedWriter swallows the mux's own 404 and 405 answers (see
// withLogging) and passes anything else, such as a redirect, through.
type unroutedWriter struct {
	http.ResponseWriter
	status int
}

func (u *unroutedWriter) WriteHeader(code int) {
	if code == http.StatusNotFound || code == http.StatusMethodNotAllowed {
		u.status = code
		return
	}
	u.ResponseWriter.WriteHeader(code)
}

func (u *unroutedWriter) Write(b []byte) (int, error) {
	if u.status != 0 {
		return len(b), nil
	}
	return u.ResponseWriter.Write(b)
}

// authenticate finds who makes the request: an API key in the
// Authorization header, else a session cookie, else nobody (nil). A
// presented API key that is not valid is an error, so a client with a
// revoked key learns it instead of silently acting as anonymous.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, error) {
	ctx := r.Context()
	if strings.HasPrefix(r.URL.Path, HooksPath) {
		// A trigger's hook authenticates its sender itself, as the trigger's
		// service identity: by HMAC signature, or by the bearer token
		// Alertmanager sends, which is the trigger's secret and not an API
		// key. Nobody acts there as a user.
		return nil, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || !auth.IsAPIKey(token) {
			return nil, Errorf(http.StatusUnauthorized, "unauthenticated", "Authorization must be \"Bearer obk_…\" with an opsbook API key")
		}
		k, err := s.store.APIKeyByHash(ctx, auth.HashToken(token), s.now())
		if errors.Is(err, store.ErrNotFound) {
			return nil, Errorf(http.StatusUnauthorized, "unauthenticated", "API key not valid: revoked, expired or mistyped; create a new one with POST /api/v1/apikeys")
		}
		if err != nil {
			return nil, err
		}
		p, err := s.store.Principal(ctx, k.UserID, auth.ViaAPIKey)
		if errors.Is(err, store.ErrNotFound) {
			return nil, Errorf(http.StatusUnauthorized, "unauthenticated", "the API key's user is disabled")
		}
		return p, err
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	sess, err := s.store.GetSession(ctx, auth.HashToken(c.Value), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil // expired or signed out: anonymous
	}
	if err != nil {
		return nil, err
	}
	p, err := s.store.Principal(ctx, sess.UserID, auth.ViaSession)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p.CSRFToken = sess.CSRF
	return p, nil
}

// RemoteAddr is the client's address for the audit log: the first
// X-Forwarded-For hop when the server is configured to trust its proxy,
// else the connection's peer.
func (s *Server) RemoteAddr(r *http.Request) string {
	if s.cfg.TrustProxy {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			first, _, _ := strings.Cut(xff, ",")
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// SecureRequest reports whether the client reached us over TLS, directly
// or through a proxy; session cookies are then marked Secure. Trusting
// X-Forwarded-Proto here needs no proxy configuration: a forged header only
// makes the cookie stricter.
func (s *Server) SecureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
