package ui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
	"github.com/opsbook/opsbook/internal/workspace"
)

func (h *handlers) registerAdmin() {
	admin := auth.Need(auth.Admin, auth.NoScope)
	h.s.Handle("GET /admin/users", admin, "UI: users", h.adminUsers)
	h.s.Handle("POST /admin/users", admin, "UI: create a user", h.createUser)
	h.s.Handle("GET /admin/teams", admin, "UI: teams, members and grants", h.adminTeams)
	h.s.Handle("POST /admin/teams", admin, "UI: create a team", h.createTeam)
	h.s.Handle("POST /admin/teams/members", admin, "UI: add a user to a team", h.addMember)
	h.s.Handle("POST /admin/users/{name}/disabled", admin, "UI: disable or re-enable a user", h.setUserDisabled)
	h.s.Handle("POST /admin/grants/{id}/delete", admin, "UI: revoke a grant", h.revokeGrant)
	h.s.Handle("POST /admin/grants", admin, "UI: grant a team a permission", h.createGrant)
	h.s.Handle("GET /admin/environments", admin, "UI: environments and their targets", h.adminEnvironments)
	h.s.Handle("GET /admin/triggers", admin, "UI: triggers", h.adminTriggers)
	h.s.Handle("POST /admin/triggers", admin, "UI: create a trigger", h.createTrigger)
	h.s.Handle("POST /admin/triggers/{name}/delete", admin, "UI: delete a trigger", h.deleteTrigger)
	h.s.Handle("GET /admin/variables", auth.NeedSomewhere(auth.RunbookView), "UI: variables (sensitive values write-only)", h.adminVariables)
	h.s.Handle("POST /admin/variables", auth.Need(auth.VariableEdit, h.scopeVariableForm), "UI: set a variable", h.setVariable)
}

func (h *handlers) adminPage(r *http.Request, title, sub string, data any) *page {
	p := h.newPage(r, title, "admin", data)
	p.Sub = sub
	return p
}

func (h *handlers) adminUsers(w http.ResponseWriter, r *http.Request) error {
	return h.usersPage(w, r, http.StatusOK, userForm{})
}

// userForm is the new-user form as the admin filled it in: a refused
// form comes back with its fields (but the password) and the reason.
type userForm struct {
	Name, Display, Team, Error string
}

func (h *handlers) usersPage(w http.ResponseWriter, r *http.Request, status int, form userForm) error {
	users, err := h.s.Store().ListUsers(r.Context())
	if err != nil {
		return err
	}
	teams, err := h.s.Store().ListTeams(r.Context())
	if err != nil {
		return err
	}
	return h.render(w, status, "admin_users", h.adminPage(r, "admin_users", "users", struct {
		Users []store.User
		Teams []store.Team
		Form  userForm
	}{users, teams, form}))
}

func (h *handlers) createUser(w http.ResponseWriter, r *http.Request) error {
	spec := server.UserSpec{Name: strings.TrimSpace(r.PostFormValue("name")), Display: strings.TrimSpace(r.PostFormValue("display")),
		Password: r.PostFormValue("password")}
	if team := r.PostFormValue("team"); team != "" {
		spec.Teams = []string{team}
	}
	if _, err := h.s.CreateUser(r, spec); err != nil {
		var e *server.Error
		if errors.As(err, &e) && e.Status < 500 && e.Status != http.StatusForbidden {
			return h.usersPage(w, r, e.Status, userForm{Name: spec.Name, Display: spec.Display, Team: r.PostFormValue("team"), Error: e.Message})
		}
		return err
	}
	http.Redirect(w, r, "/admin/users?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) adminTeams(w http.ResponseWriter, r *http.Request) error {
	teams, err := h.s.Store().ListTeams(r.Context())
	if err != nil {
		return err
	}
	users, err := h.s.Store().ListUsers(r.Context())
	if err != nil {
		return err
	}
	return h.render(w, http.StatusOK, "admin_teams", h.adminPage(r, "admin_teams", "teams", struct {
		Teams       []store.Team
		Users       []store.User
		Permissions []auth.Permission
	}{teams, users, auth.Permissions}))
}

func (h *handlers) createTeam(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.s.CreateTeam(r, strings.TrimSpace(r.PostFormValue("name"))); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/teams?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) addMember(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.AddTeamMember(r, r.PostFormValue("team"), r.PostFormValue("user")); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/teams?flash=saved", http.StatusSeeOther)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (h *handlers) createGrant(w http.ResponseWriter, r *http.Request) error {
	g := &auth.Grant{Team: r.PostFormValue("team"), Permission: auth.Permission(r.PostFormValue("permission")),
		Projects: splitList(r.PostFormValue("projects")), Environments: splitList(r.PostFormValue("environments"))}
	if err := h.s.CreateGrant(r, g); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/teams?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) adminEnvironments(w http.ResponseWriter, r *http.Request) error {
	return h.render(w, http.StatusOK, "admin_environments", h.adminPage(r, "admin_environments", "environments", struct {
		Environments []workspace.Environment
	}{h.s.Catalog().Workspace().Config.Environments}))
}

func (h *handlers) adminTriggers(w http.ResponseWriter, r *http.Request) error {
	return h.renderTriggers(w, r, "", "")
}

// renderTriggers shows the triggers and the form for a new one; secret is
// a new webhook trigger's HMAC key, shown this once.
func (h *handlers) renderTriggers(w http.ResponseWriter, r *http.Request, created, secret string) error {
	ctx := r.Context()
	ts, err := h.s.Store().ListTriggers(ctx)
	if err != nil {
		return err
	}
	users, err := h.s.Store().ListUsers(ctx)
	if err != nil {
		return err
	}
	var services []string
	for _, u := range users {
		if u.Service {
			services = append(services, u.Name)
		}
	}
	var runbooks []string
	for _, e := range h.s.Catalog().List() {
		runbooks = append(runbooks, e.Path)
	}
	return h.render(w, http.StatusOK, "admin_triggers", h.adminPage(r, "admin_triggers", "triggers", struct {
		Triggers     []store.Trigger
		Runbooks     []string
		Environments []string
		Services     []string
		Created      string
		Secret       string
	}{ts, runbooks, h.s.Catalog().Workspace().EnvironmentNames(), services, created, secret}))
}

func (h *handlers) createTrigger(w http.ResponseWriter, r *http.Request) error {
	spec := server.TriggerSpec{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Kind:        r.PostFormValue("kind"),
		Runbook:     r.PostFormValue("runbook"),
		Environment: r.PostFormValue("environment"),
		ServiceUser: r.PostFormValue("service_user"),
		CatchUp:     r.PostFormValue("catch_up") != "",
	}
	// Parameters, one NAME=value a line, are checked by CreateTrigger.
	for i, line := range strings.Split(r.PostFormValue("params"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			return server.BadRequest("parameters line %d: %q is not NAME=value", i+1, line)
		}
		if spec.Params == nil {
			spec.Params = map[string]string{}
		}
		spec.Params[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	if spec.Kind == store.TriggerSchedule {
		spec.Schedule = strings.TrimSpace(r.PostFormValue("schedule"))
		spec.Timezone = strings.TrimSpace(r.PostFormValue("timezone"))
	}
	t, secret, err := h.s.CreateTrigger(r, spec, principal(r).Name)
	if err != nil {
		return err
	}
	if secret == "" {
		http.Redirect(w, r, "/admin/triggers?flash=saved", http.StatusSeeOther)
		return nil
	}
	return h.renderTriggers(w, r, t.Name, secret)
}

func (h *handlers) deleteTrigger(w http.ResponseWriter, r *http.Request) error {
	if err := h.s.DeleteTrigger(r, r.PathValue("name")); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/triggers?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) adminVariables(w http.ResponseWriter, r *http.Request) error {
	rows, err := h.s.VisibleVariables(r.Context(), principal(r), "", true)
	if err != nil {
		return err
	}
	for i := range rows {
		if rows[i].Sensitive {
			rows[i].Value = "" // write-only: the page never holds it
		}
	}
	return h.render(w, http.StatusOK, "admin_variables", h.adminPage(r, "admin_variables", "variables", struct {
		Variables []store.Variable
		Envs      []string
	}{rows, h.s.Catalog().Workspace().EnvironmentNames()}))
}

// scopeVariableForm is the environment the variable form names; none
// means every environment at once.
func (h *handlers) scopeVariableForm(r *http.Request) (auth.Scope, error) {
	env := r.PostFormValue("environment")
	if env == "" {
		env = auth.AllEnvironments
	}
	return auth.Scope{Project: auth.AllProjects, Environment: env}, nil
}

func (h *handlers) setVariable(w http.ResponseWriter, r *http.Request) error {
	name, env := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("environment")
	sensitive := r.PostFormValue("sensitive") == "true"
	if _, err := h.s.SetVariable(r, principal(r).Name, env, name, r.PostFormValue("value"), sensitive); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/variables?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) setUserDisabled(w http.ResponseWriter, r *http.Request) error {
	disabled, err := strconv.ParseBool(r.PostFormValue("disabled"))
	if err != nil {
		return server.BadRequest("disabled must be true or false")
	}
	if err := h.s.SetUserDisabled(r, r.PathValue("name"), disabled, principal(r).Name); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/users?flash=saved", http.StatusSeeOther)
	return nil
}

func (h *handlers) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return server.BadRequest("grant id must be a number")
	}
	if err := h.s.RevokeGrant(r, id); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/teams?flash=saved", http.StatusSeeOther)
	return nil
}
