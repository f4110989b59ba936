package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/audit"
	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// ErrBadCredentials is Login's answer to a wrong name or password, a
// disabled user or a service identity: one error for all, so the answer
// does not tell which names exist.
var ErrBadCredentials = Errorf(http.StatusUnauthorized, "bad_credentials", "wrong name or password")

// Login checks name and password, starts a session and sets its cookie on
// w, and returns the user and the session; every attempt is audited. via ("ui"; "" for the API) is recorded with
// it. A refused attempt returns ErrBadCredentials after the same password
// work as an accepted one, so timing does not tell names apart either.
func (s *Server) Login(w http.ResponseWriter, r *http.Request, name, password, via string) (store.User, store.Session, error) {
	ctx := r.Context()
	remote := s.RemoteAddr(r)
	refuse := func(reason string) (store.User, store.Session, error) {
		s.logins.fail(s.now(), name, remote)
		s.Audit(ctx, name, remote, "login.fail", "user/"+name, viaDetail(via, "reason", reason))
		return store.User{}, store.Session{}, ErrBadCredentials
	}
	if !s.logins.allow(s.now(), name, remote) {
		s.Audit(ctx, name, remote, "login.throttled", "user/"+name, viaDetail(via))
		return store.User{}, store.Session{}, ErrThrottled
	}
	u, err := s.store.GetUserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		auth.BurnPasswordCheck(password)
		return refuse("unknown user")
	}
	if err != nil {
		return store.User{}, store.Session{}, err
	}
	ok := false
	if u.PasswordHash != "" && !u.Disabled && !u.Service {
		if ok, err = auth.VerifyPassword(u.PasswordHash, password); err != nil {
			return store.User{}, store.Session{}, err
		}
	} else {
		auth.BurnPasswordCheck(password)
	}
	if !ok {
		return refuse("bad password or disabled")
	}
	s.logins.succeed(name)
	sess, err := s.startSession(w, r, u)
	if err != nil {
		return store.User{}, store.Session{}, err
	}
	if err := s.Audit(ctx, u.Name, remote, "login", "user/"+u.Name, viaDetail(via)); err != nil {
		return store.User{}, store.Session{}, err
	}
	return u, sess, nil
}

// startSession creates a session for u and sets its cookie on w.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) (store.Session, error) {
	token := auth.NewToken()
	now := s.now()
	sess := store.Session{TokenHash: auth.HashToken(token), UserID: u.ID, CSRF: auth.NewToken(), Remote: s.RemoteAddr(r), CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateSession(r.Context(), sess); err != nil {
		return store.Session{}, err
	}
	s.setSessionCookie(w, r, token, sess.ExpiresAt)
	return sess, nil
}

// Logout ends the request's session (an API-key caller has none to end),
// clears the cookie and audits it.
func (s *Server) Logout(w http.ResponseWriter, r *http.Request, via string) error {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.store.DeleteSession(r.Context(), auth.HashToken(c.Value)); err != nil {
			return err
		}
	}
	s.setSessionCookie(w, r, "", time.Time{})
	return s.AuditRequest(r, "logout", "user/"+auth.FromContext(r.Context()).Name, viaDetail(via))
}

// setSessionCookie sets the session cookie, or removes it when token is "".
func (s *Server) setSessionCookie(w http.ResponseWriter, r *http.Request, token string, expires time.Time) {
	c := &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: s.SecureRequest(r), Expires: expires}
	if token == "" {
		c.MaxAge, c.Expires = -1, time.Unix(1, 0)
	}
	http.SetCookie(w, c)
}

// viaDetail is an audit detail of key/value pairs plus via when given;
// nil when empty.
func viaDetail(via string, kv ...string) map[string]string {
	if via == "" && len(kv) == 0 {
		return nil
	}
	d := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	if via != "" {
		d["via"] = via
	}
	return d
}

// newPassword is a random password for a generated account or a reset:
// 18 random bytes, URL-safe base64.
func newPassword() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ResetPassword gives a local user a new random password, signs out every
// session of theirs and audits it. It works on the store directly, without
// a running server: `opsbook admin reset-password` on the machine that
// holds the data directory (or the database's credentials) is how an
// administrator who lost the password — or never saw the generated one —
// gets back in.
func ResetPassword(ctx context.Context, st *store.Store, name, actor string) (string, error) {
	u, err := st.GetUserByName(ctx, name)
	if err != nil {
		return "", err
	}
	if u.Service {
		return "", fmt.Errorf("%s is a service identity: it has no password; create an API key for it instead", name)
	}
	password := newPassword()
	if u.PasswordHash, err = auth.HashPassword(password); err != nil {
		return "", err
	}
	if err := st.UpdateUser(ctx, u); err != nil {
		return "", err
	}
	if err := st.DeleteUserSessions(ctx, u.ID); err != nil {
		return "", err
	}
	if _, err := st.AppendAudit(ctx, audit.Entry{Time: time.Now(), Actor: actor, Action: "user.password_reset", Target: "user/" + name,
		Detail: map[string]string{"via": "cli", "sessions": "ended"}}); err != nil {
		return "", fmt.Errorf("record the reset in the audit log: %w", err)
	}
	return password, nil
}
