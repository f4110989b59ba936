package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash = %q", h)
	}
	tests := []struct {
		name, hash, pw string
		ok, err        bool
	}{
		{"right password", h, "correct horse battery", true, false},
		{"wrong password", h, "correct horse batterY", false, false},
		{"bcrypt hash", "$2a$10$abcdefghijklmnopqrstuv", "x", false, true},
		{"absurd memory", "$argon2id$v=19$m=99999999,t=2,p=1$c2FsdA$aGFzaA", "x", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword(tt.hash, tt.pw)
			if ok != tt.ok || (err != nil) != tt.err {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
		})
	}
	if _, err := HashPassword("short"); !errors.Is(err, ErrWeakPassword) {
		t.Fatalf("short password: %v", err)
	}
}

func TestTokens(t *testing.T) {
	k := NewAPIKey()
	if !IsAPIKey(k) || len(k) != 4+43 || IsAPIKey(NewToken()) {
		t.Fatalf("api key %q", k)
	}
	if NewToken() == NewToken() {
		t.Fatal("tokens repeat")
	}
	if HashToken(k) == k || len(HashToken(k)) != 64 || HashToken(k) != HashToken(k) {
		t.Fatal("HashToken")
	}
}

func TestCan(t *testing.T) {
	p := &Principal{Grants: []Grant{
		{Permission: RunbookRun, Projects: []string{"payments"}, Environments: []string{"staging"}},
		{Permission: RunbookView},
	}}
	tests := []struct {
		perm Permission
		s    Scope
		want bool
	}{
		{RunbookRun, Scope{"payments", "staging"}, true},
		{RunbookRun, Scope{"payments", "production"}, false},
		{RunbookRun, Scope{"search", "staging"}, false},
		{RunbookRun, Scope{"payments", ""}, true},
		{RunbookView, Scope{"anything", "production"}, true},
		{RunbookApprove, Scope{}, false},
		{Admin, Scope{}, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.perm)+"/"+tt.s.Project+"/"+tt.s.Environment, func(t *testing.T) {
			if got := p.Can(tt.perm, tt.s); got != tt.want {
				t.Fatalf("Can = %v", got)
			}
		})
	}
	admin := &Principal{Grants: []Grant{{Permission: Admin}}}
	if !admin.Can(VariableEdit, Scope{"x", "production"}) || !admin.IsAdmin() {
		t.Fatal("admin must hold everything")
	}
	var anon *Principal
	if anon.Can(RunbookView, Scope{}) || anon.CanSomewhere(RunbookView) {
		t.Fatal("nil principal holds nothing")
	}
}

func TestRuleCheck(t *testing.T) {
	prod := func(*http.Request) (Scope, error) { return Scope{Project: "payments", Environment: "production"}, nil }
	missing := errors.New("run 42 not found")
	notFound := func(*http.Request) (Scope, error) { return Scope{}, missing }
	viewer := &Principal{Grants: []Grant{{Permission: RunbookView}}}
	stagingRunner := &Principal{Grants: []Grant{{Permission: RunbookRun, Environments: []string{"staging"}}}}
	tests := []struct {
		name string
		rule Rule
		p    *Principal
		want error
	}{
		{"zero rule refuses", Rule{}, viewer, nil}, // any non-nil error; checked below
		{"public anonymous", Public(), nil, nil},
		{"signed in anonymous", SignedIn(), nil, ErrUnauthenticated},
		{"signed in viewer", SignedIn(), viewer, nil},
		{"need anonymous", Need(RunbookRun, prod), nil, ErrUnauthenticated},
		{"need without permission", Need(RunbookRun, prod), viewer, ErrForbidden},
		{"need out of scope", Need(RunbookRun, prod), stagingRunner, ErrForbidden},
		{"no permission hides existence", Need(RunbookRun, notFound), viewer, ErrForbidden},
		{"scope error after permission", Need(RunbookRun, notFound), stagingRunner, missing},
		{"somewhere", NeedSomewhere(RunbookRun), stagingRunner, nil},
		{"somewhere without", NeedSomewhere(RunbookApprove), stagingRunner, ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rule.Check(tt.p, httptest.NewRequest("GET", "/", nil))
			if !tt.rule.Valid() {
				if err == nil {
					t.Fatal("invalid rule allowed the request")
				}
				return
			}
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	sess := &Principal{Via: ViaSession, CSRFToken: "tok"}
	key := &Principal{Via: ViaAPIKey}
	tests := []struct {
		name    string
		p       *Principal
		method  string
		headers map[string]string
		wantErr bool
	}{
		{"safe method", sess, "GET", nil, false},
		{"session post with token", sess, "POST", map[string]string{CSRFHeader: "tok", "Sec-Fetch-Site": "same-origin"}, false},
		{"session post without token", sess, "POST", nil, true},
		{"session post wrong token", sess, "POST", map[string]string{CSRFHeader: "nope"}, true},
		{"session post cross-site", sess, "POST", map[string]string{CSRFHeader: "tok", "Sec-Fetch-Site": "cross-site"}, true},
		{"session post other origin", sess, "DELETE", map[string]string{CSRFHeader: "tok", "Origin": "https://evil.example"}, true},
		{"api key needs no token", key, "POST", nil, false},
		{"anonymous", nil, "POST", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://opsbook.example/api/v1/runs", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			if err := CheckCSRF(tt.p, r); (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestAllEnvironments(t *testing.T) {
	prodOnly := &Principal{Grants: []Grant{{Permission: VariableEdit, Environments: []string{"prod"}}}}
	everywhere := &Principal{Grants: []Grant{{Permission: VariableEdit}}}
	s := Scope{Environment: AllEnvironments}
	if prodOnly.Can(VariableEdit, s) || !everywhere.Can(VariableEdit, s) {
		t.Fatal("only an unrestricted grant may act on every environment at once")
	}
}
