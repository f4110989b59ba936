package server

import (
	"net/http"
	"strconv"
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
