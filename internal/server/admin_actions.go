package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
)

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
