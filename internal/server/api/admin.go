package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerAdmin() {
	admin := auth.Need(auth.Admin, auth.NoScope)
	h.s.Handle("GET /api/v1/users", admin, "Users", h.listUsers)
	h.s.Handle("POST /api/v1/users", admin, "Create a user or service identity", h.createUser)
	h.s.Handle("GET /api/v1/users/{name}", admin, "One user", h.getUser)
	h.s.Handle("PATCH /api/v1/users/{name}", admin, "Change a user's display name, password or disabled flag", h.updateUser)
	h.s.Handle("DELETE /api/v1/users/{name}", admin, "Delete a user", h.deleteUser)
	h.s.Handle("GET /api/v1/teams", admin, "Teams with members and grants", h.listTeams)
	h.s.Handle("POST /api/v1/teams", admin, "Create a team", h.createTeam)
	h.s.Handle("DELETE /api/v1/teams/{name}", admin, "Delete a team", h.deleteTeam)
	h.s.Handle("PUT /api/v1/teams/{name}/members/{user}", admin, "Add a user to a team", h.addMember)
	h.s.Handle("DELETE /api/v1/teams/{name}/members/{user}", admin, "Remove a user from a team", h.removeMember)
	h.s.Handle("POST /api/v1/grants", admin, "Grant a team a permission in a scope", h.createGrant)
	h.s.Handle("DELETE /api/v1/grants/{id}", admin, "Revoke a grant", h.deleteGrant)
}

func (h *handlers) listUsers(w http.ResponseWriter, r *http.Request) error {
	users, err := h.s.Store().ListUsers(r.Context())
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, Page[store.User]{Items: users})
	return nil
}

func (h *handlers) createUser(w http.ResponseWriter, r *http.Request) error {
	var req server.UserSpec
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	created, err := h.s.CreateUser(r, req)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, created)
	return nil
}

func (h *handlers) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := h.s.Store().GetUserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, u)
	return nil
}

type updateUserRequest struct {
	Display  *string `json:"display,omitempty"`
	Password *string `json:"password,omitempty"`
	Disabled *bool   `json:"disabled,omitempty"`
}

func (h *handlers) updateUser(w http.ResponseWriter, r *http.Request) error {
	var req updateUserRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	u, err := h.s.Store().GetUserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	detail := map[string]string{}
	if req.Display != nil {
		u.Display = *req.Display
		detail["display"] = *req.Display
	}
	if req.Password != nil {
		if u.Service {
			return server.BadRequest("a service identity has no password")
		}
		if u.PasswordHash, err = auth.HashPassword(*req.Password); err != nil {
			return server.BadRequest("%v", err)
		}
		detail["password"] = "changed"
	}
	if req.Disabled != nil {
		u.Disabled = *req.Disabled
		detail["disabled"] = strconv.FormatBool(*req.Disabled)
	}
	if err := h.s.Store().UpdateUser(r.Context(), u); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "user.update", "user/"+u.Name, detail); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (h *handlers) deleteUser(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if name == principal(r).Name {
		return server.BadRequest("you cannot delete yourself; ask another administrator")
	}
	u, err := h.s.Store().GetUserByName(r.Context(), name)
	if err != nil {
		return err
	}
	if err := h.s.Store().DeleteUser(r.Context(), u.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return err
		}
		return server.Errorf(http.StatusConflict, "in_use", "cannot delete user %s: %v (a trigger may act as them; delete it first)", name, err)
	}
	if err := h.s.AuditRequest(r, "user.delete", "user/"+name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) listTeams(w http.ResponseWriter, r *http.Request) error {
	teams, err := h.s.Store().ListTeams(r.Context())
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, Page[store.Team]{Items: teams})
	return nil
}

type createTeamRequest struct {
	Name string `json:"name" api:"required"`
}

func (h *handlers) createTeam(w http.ResponseWriter, r *http.Request) error {
	var req createTeamRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	t, err := h.s.CreateTeam(r, req.Name)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, t)
	return nil
}

func (h *handlers) deleteTeam(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := h.s.Store().DeleteTeam(r.Context(), name); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "team.delete", "team/"+name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) addMember(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.AddTeamMember(r, r.PathValue("name"), r.PathValue("user")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) removeMember(w http.ResponseWriter, r *http.Request) error {
	team, name := r.PathValue("name"), r.PathValue("user")
	u, err := h.s.Store().GetUserByName(r.Context(), name)
	if err != nil {
		return err
	}
	if err := h.s.Store().RemoveTeamMember(r.Context(), team, u.ID); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "team.member.remove", "team/"+team, map[string]string{"user": name}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handlers) createGrant(w http.ResponseWriter, r *http.Request) error {
	var g auth.Grant
	if err := server.DecodeJSON(r, &g); err != nil {
		return err
	}
	if err := h.s.CreateGrant(r, &g); err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusCreated, g)
	return nil
}

func (h *handlers) deleteGrant(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return server.BadRequest("grant id must be a number, not %q", r.PathValue("id"))
	}
	if err := h.s.RevokeGrant(r, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
