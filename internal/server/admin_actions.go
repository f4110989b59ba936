package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/store"
)

// UserSpec is what an administrator asks for when creating a user or a
// service identity, through the API or the web form.
type UserSpec struct {
	Name     string   `json:"name" api:"required"`
	Display  string   `json:"display,omitempty"`
	Password string   `json:"password,omitempty"`
	Service  bool     `json:"service,omitempty"`
	Teams    []string `json:"teams,omitempty"`
}

// CreateUser checks a new user's name, password and teams, creates the
// user as a member of those teams, audits it and returns the user as
// stored.
func (s *Server) CreateUser(r *http.Request, spec UserSpec) (store.User, error) {
	if err := auth.CheckName("user", spec.Name); err != nil {
		return store.User{}, BadRequest("%v", err)
	}
	u := &store.User{Name: spec.Name, Display: spec.Display, Service: spec.Service}
	switch {
	case spec.Service && spec.Password != "":
		return store.User{}, BadRequest("a service identity has no password; give it an API key instead")
	case !spec.Service && spec.Password == "":
		return store.User{}, BadRequest("password is required for a person (at least %d characters)", auth.MinPasswordLength)
	case spec.Password != "":
		hash, err := auth.HashPassword(spec.Password)
		if err != nil {
			return store.User{}, BadRequest("%v", err)
		}
		u.PasswordHash = hash
	}
	ctx := r.Context()
	for _, t := range spec.Teams {
		if _, err := s.store.GetTeam(ctx, t); err != nil {
			return store.User{}, BadRequest("team %s does not exist; create it first with POST /api/v1/teams", t)
		}
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return store.User{}, err
	}
	for _, t := range spec.Teams {
		if err := s.store.AddTeamMember(ctx, t, u.ID); err != nil {
			return store.User{}, err
		}
	}
	if err := s.AuditRequest(r, "user.create", "user/"+u.Name, map[string]string{"service": strconv.FormatBool(u.Service)}); err != nil {
		return store.User{}, err
	}
	return s.store.GetUser(ctx, u.ID)
}

// CreateTeam checks a new team's name, creates it and audits it.
func (s *Server) CreateTeam(r *http.Request, name string) (store.Team, error) {
	if err := auth.CheckName("team", name); err != nil {
		return store.Team{}, BadRequest("%v", err)
	}
	t, err := s.store.CreateTeam(r.Context(), name)
	if err != nil {
		return store.Team{}, err
	}
	if err := s.AuditRequest(r, "team.create", "team/"+t.Name, nil); err != nil {
		return store.Team{}, err
	}
	return t, nil
}

// AddTeamMember adds the user called name to team and audits it.
func (s *Server) AddTeamMember(r *http.Request, team, name string) error {
	u, err := s.store.GetUserByName(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.store.AddTeamMember(r.Context(), team, u.ID); err != nil {
		return err
	}
	return s.AuditRequest(r, "team.member.add", "team/"+team, map[string]string{"user": name})
}

// SetUserDisabled disables or re-enables a user (a disabled user's
// sessions and API keys stop working) and audits it. Administrators cannot
// disable themselves, so the server always keeps one who can undo it.
func (s *Server) SetUserDisabled(r *http.Request, name string, disabled bool, actor string) error {
	if disabled && name == actor {
		return BadRequest("you cannot disable yourself; ask another administrator")
	}
	u, err := s.store.GetUserByName(r.Context(), name)
	if err != nil {
		return err
	}
	u.Disabled = disabled
	if err := s.store.UpdateUser(r.Context(), u); err != nil {
		return err
	}
	return s.AuditRequest(r, "user.update", "user/"+u.Name, map[string]string{"disabled": strconv.FormatBool(disabled)})
}

// CreateGrant checks a grant's permission and environments, stores it
// (g.ID is set) and audits it; the API and the teams page both grant here.
func (s *Server) CreateGrant(r *http.Request, g *auth.Grant) error {
	if _, err := auth.ParsePermission(string(g.Permission)); err != nil {
		return BadRequest("%v", err)
	}
	for _, e := range g.Environments {
		if _, err := s.catalog.Workspace().Environment(e); err != nil {
			return BadRequest("%v", err)
		}
	}
	g.ID = 0
	if err := s.store.CreateGrant(r.Context(), g); err != nil {
		return err
	}
	return s.AuditRequest(r, "grant.create", "team/"+g.Team, map[string]string{
		"grant": strconv.FormatInt(g.ID, 10), "permission": string(g.Permission),
		"projects": joinOrAll(g.Projects), "environments": joinOrAll(g.Environments)})
}

// joinOrAll names a grant's scope for the audit log: "*" when it is empty.
func joinOrAll(l []string) string {
	if len(l) == 0 {
		return "*"
	}
	return strings.Join(l, ",")
}

// RevokeGrant deletes a team's grant and audits it.
func (s *Server) RevokeGrant(r *http.Request, id int64) error {
	g, err := s.store.GetGrant(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGrant(r.Context(), id); err != nil {
		return err
	}
	return s.AuditRequest(r, "grant.delete", "team/"+g.Team, map[string]string{"grant": strconv.FormatInt(id, 10), "permission": string(g.Permission)})
}
