package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Errors an authorisation check returns; the server maps them to 401 and 403.
var (
	ErrUnauthenticated = errors.New("sign in first: send a session cookie or an Authorization: Bearer API key")
	ErrForbidden       = errors.New("you do not have the permission this needs; ask an administrator for a grant")
)

// ScopeFunc finds what a request is about (the runbook's project, the run's
// environment, …). It may read path values, the query or the body (the
// body is buffered by the server so the handler can read it again).
type ScopeFunc func(*http.Request) (Scope, error)

// Rule decides whether a principal may make a request. Every route of the
// server is registered with one; the zero Rule is invalid, so a route
// cannot be registered without deciding who may call it.
type Rule struct {
	kind  ruleKind
	perm  Permission
	scope ScopeFunc
}

type ruleKind int

const (
	ruleInvalid ruleKind = iota
	rulePublic
	ruleSignedIn
	ruleNeed
	ruleNeedSomewhere
)

// Public lets anyone call the route, signed in or not (health checks,
// login, signed webhooks that authenticate themselves).
func Public() Rule { return Rule{kind: rulePublic} }

// SignedIn lets any authenticated principal call the route (own session,
// own API keys).
func SignedIn() Rule { return Rule{kind: ruleSignedIn} }

// Need requires perm within the scope that scope finds in the request.
func Need(perm Permission, scope ScopeFunc) Rule {
	if scope == nil {
		panic("auth.Need: nil scope function; use NeedSomewhere for list endpoints")
	}
	return Rule{kind: ruleNeed, perm: perm, scope: scope}
}

// NeedSomewhere requires perm in at least one scope; the handler must then
// filter what it returns with Principal.Can.
func NeedSomewhere(perm Permission) Rule { return Rule{kind: ruleNeedSomewhere, perm: perm} }

// Valid reports whether the rule was made by one of the constructors.
func (r Rule) Valid() bool { return r.kind != ruleInvalid }

// IsPublic reports whether the rule lets anonymous callers in.
func (r Rule) IsPublic() bool { return r.kind == rulePublic }

// String describes the rule, for the OpenAPI document and error messages.
func (r Rule) String() string {
	switch r.kind {
	case rulePublic:
		return "public"
	case ruleSignedIn:
		return "signed in"
	case ruleNeed:
		return string(r.perm) + " in the request's scope"
	case ruleNeedSomewhere:
		return string(r.perm) + " in any scope (results filtered)"
	}
	return "invalid"
}

// Permission returns the permission the rule needs, if any.
func (r Rule) Permission() Permission { return r.perm }

// Check applies the rule. p is nil for anonymous requests. A scope error
// (e.g. the run does not exist) is returned as is, after the caller has
// been found to hold the permission somewhere, so anonymous callers and
// callers without any grant never learn whether a thing exists.
func (r Rule) Check(p *Principal, req *http.Request) error {
	switch r.kind {
	case rulePublic:
		return nil
	case ruleSignedIn, ruleNeed, ruleNeedSomewhere:
		if p == nil {
			return ErrUnauthenticated
		}
	default:
		return errors.New("route registered without an authorisation rule")
	}
	switch r.kind {
	case ruleSignedIn:
		return nil
	case ruleNeedSomewhere:
		if !p.CanSomewhere(r.perm) {
			return fmt.Errorf("%w (needs %s)", ErrForbidden, r.perm)
		}
		return nil
	}
	if !p.CanSomewhere(r.perm) {
		return fmt.Errorf("%w (needs %s)", ErrForbidden, r.perm)
	}
	s, err := r.scope(req)
	if err != nil {
		return err
	}
	if !p.Can(r.perm, s) {
		return fmt.Errorf("%w (needs %s%s)", ErrForbidden, r.perm, describe(s))
	}
	return nil
}

func describe(s Scope) string {
	project, env := "project "+s.Project, "environment "+s.Environment
	if s.Project == AllProjects {
		project = "every project (a grant without a project restriction)"
	}
	if s.Environment == AllEnvironments {
		env = "every environment (a grant without an environment restriction)"
	}
	switch {
	case s.Project != "" && s.Environment != "":
		return " on " + project + " in " + env
	case s.Project != "":
		return " on " + project
	case s.Environment != "":
		return " in " + env
	}
	return ""
}

// NoScope is the scope function of actions about nothing in particular
// (e.g. creating a user: Admin is checked over every project).
func NoScope(*http.Request) (Scope, error) { return Scope{}, nil }

type principalKey struct{}

// WithPrincipal returns a context carrying the principal.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the request's principal, nil when anonymous.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
