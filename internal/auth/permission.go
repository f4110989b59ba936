package auth

import (
	"fmt"
	"slices"
)

// Permission is something a team may be granted.
type Permission string

const (
	RunbookView    Permission = "RunbookView"    // see runbooks, runs and their logs
	RunbookEdit    Permission = "RunbookEdit"    // publish snapshots, sync workspaces, run unpublished content
	RunbookRun     Permission = "RunbookRun"     // start, cancel, resume runs; answer manual steps and questions
	RunbookApprove Permission = "RunbookApprove" // decide Go/No-Go gates
	VariableEdit   Permission = "VariableEdit"   // set and delete variables
	Admin          Permission = "Admin"          // users, teams, grants, API keys, triggers, audit; implies every other permission everywhere
)

// Permissions lists every permission.
var Permissions = []Permission{RunbookView, RunbookEdit, RunbookRun, RunbookApprove, VariableEdit, Admin}

// ParsePermission checks a permission name.
func ParsePermission(s string) (Permission, error) {
	for _, p := range Permissions {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("unknown permission %q; use one of %v", s, Permissions)
}

// Grant gives a team a permission within a scope. Empty Projects means all
// projects, empty Environments all environments.
type Grant struct {
	ID           int64      `json:"id"`
	Team         string     `json:"team" api:"required"`
	Permission   Permission `json:"permission" api:"required"`
	Projects     []string   `json:"projects"`
	Environments []string   `json:"environments"`
}

// Covers reports whether the grant applies to the scope. An empty field of
// the scope means "not about any particular one": a grant restricted to
// some projects still covers a scope with no project (e.g. listing
// environments), but a scope naming a project must be in the grant's list.
func (g Grant) Covers(s Scope) bool {
	if s.Project != "" && len(g.Projects) > 0 && !slices.Contains(g.Projects, s.Project) {
		return false
	}
	if s.Environment != "" && len(g.Environments) > 0 && !slices.Contains(g.Environments, s.Environment) {
		return false
	}
	return true
}

// AllEnvironments in a scope means "every environment at once" (e.g. a
// variable that applies everywhere): only grants without an environment
// restriction cover it.
const AllEnvironments = "*"

// Scope is what an action is about.
type Scope struct {
	Project     string
	Environment string
}

// PrincipalKind says how a principal authenticated.
type PrincipalKind string

const (
	ViaSession PrincipalKind = "session"
	ViaAPIKey  PrincipalKind = "api_key"
	ViaWebhook PrincipalKind = "webhook" // a service identity acting for a signed webhook
	ViaSystem  PrincipalKind = "system"  // the server itself: scheduled triggers, retention
)

// Principal is who is making a request, with every grant of every team
// they belong to.
type Principal struct {
	UserID  int64         `json:"user_id"`
	Name    string        `json:"name"`
	Service bool          `json:"service"` // a service identity (webhooks, schedules), not a person
	Via     PrincipalKind `json:"via"`
	Teams   []string      `json:"teams"`
	Grants  []Grant       `json:"grants"`
	// CSRFToken is the session's synchronizer token; empty unless Via is ViaSession.
	CSRFToken string `json:"-"`
}

// IsAdmin reports whether the principal holds Admin.
func (p *Principal) IsAdmin() bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if g.Permission == Admin {
			return true
		}
	}
	return false
}

// Can reports whether the principal holds perm within scope.
func (p *Principal) Can(perm Permission, s Scope) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if (g.Permission == perm || g.Permission == Admin) && g.Covers(s) {
			return true
		}
	}
	return false
}

// CanSomewhere reports whether the principal holds perm in any scope at
// all: enough to call a list endpoint, whose results are then filtered
// with Can.
func (p *Principal) CanSomewhere(perm Permission) bool {
	if p == nil {
		return false
	}
	for _, g := range p.Grants {
		if g.Permission == perm || g.Permission == Admin {
			return true
		}
	}
	return false
}
