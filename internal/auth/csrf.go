package auth

import (
	"crypto/subtle"
	"errors"
	"net/http"
)

// CSRFHeader carries the session's synchronizer token on unsafe requests
// made with a session cookie. HTML forms send it as the field CSRFField.
const (
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf_token"
)

// ErrCSRF is returned when a cookie-authenticated unsafe request lacks the
// session's CSRF token or comes from another origin.
var ErrCSRF = errors.New("cross-site request refused: send the session's CSRF token in the X-CSRF-Token header (GET /api/v1/session returns it)")

var crossOrigin = http.NewCrossOriginProtection()

// CheckOrigin refuses (ErrCSRF) an unsafe request from another origin, by
// Sec-Fetch-Site / Origin as browsers send them. Forms posted before there
// is a session (sign-in, language) are checked with this alone.
func CheckOrigin(r *http.Request) error {
	if crossOrigin.Check(r) != nil {
		return ErrCSRF
	}
	return nil
}

// CheckCSRF protects cookie-authenticated requests: unsafe methods must
// come from the same origin (Sec-Fetch-Site / Origin, as browsers send
// them) and carry the session's synchronizer token. API-key requests are
// not exposed to CSRF (browsers never add Authorization headers by
// themselves) and are not checked.
func CheckCSRF(p *Principal, r *http.Request) error {
	if p == nil || p.Via != ViaSession {
		return nil
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if err := CheckOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" {
		got = r.PostFormValue(CSRFField)
	}
	if p.CSRFToken == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.CSRFToken)) != 1 {
		return ErrCSRF
	}
	return nil
}
