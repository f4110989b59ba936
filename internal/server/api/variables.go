package api

import (
	"net/http"
	"time"

	"github.com/opsbook/opsbook/internal/auth"
	"github.com/opsbook/opsbook/internal/server"
	"github.com/opsbook/opsbook/internal/store"
)

func (h *handlers) registerVariables() {
	h.s.Handle("GET /api/v1/variables", auth.NeedSomewhere(auth.RunbookView), "Variables (sensitive values are never returned)", h.listVariables)
	h.s.Handle("PUT /api/v1/variables/{name}", auth.Need(auth.VariableEdit, h.scopeVariable), "Set a variable in ?environment= (none: every environment)", h.setVariable)
	h.s.Handle("DELETE /api/v1/variables/{name}", auth.Need(auth.VariableEdit, h.scopeVariable), "Delete a variable of ?environment=", h.deleteVariable)
}

// variableView is a variable as the API shows it: a sensitive one's value
// is null, whoever asks.
type variableView struct {
	Environment string    `json:"environment"`
	Name        string    `json:"name"`
	Value       *string   `json:"value"`
	Sensitive   bool      `json:"sensitive"`
	UpdatedBy   string    `json:"updated_by"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func view(v store.Variable) variableView {
	out := variableView{Environment: v.Environment, Name: v.Name, Sensitive: v.Sensitive, UpdatedBy: v.UpdatedBy, UpdatedAt: v.UpdatedAt}
	if !v.Sensitive {
		val := v.Value
		out.Value = &val
	}
	return out
}

func (h *handlers) listVariables(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	vs, err := h.s.VisibleVariables(r.Context(), principal(r), q.Get("environment"), !q.Has("environment"))
	if err != nil {
		return err
	}
	out := []variableView{}
	for _, v := range vs {
		out = append(out, view(v))
	}
	server.WriteJSON(w, http.StatusOK, Page[variableView]{Items: out})
	return nil
}

type setVariableRequest struct {
	Value     string `json:"value"`
	Sensitive bool   `json:"sensitive"`
}

func (h *handlers) setVariable(w http.ResponseWriter, r *http.Request) error {
	var req setVariableRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, env := r.PathValue("name"), r.URL.Query().Get("environment")
	v, err := h.s.SetVariable(r, principal(r).Name, env, name, req.Value, req.Sensitive)
	if err != nil {
		return err
	}
	server.WriteJSON(w, http.StatusOK, view(v))
	return nil
}

func (h *handlers) deleteVariable(w http.ResponseWriter, r *http.Request) error {
	name, env := r.PathValue("name"), r.URL.Query().Get("environment")
	if err := h.s.Store().DeleteVariable(r.Context(), env, name); err != nil {
		return err
	}
	if err := h.s.AuditRequest(r, "variable.delete", "variable/"+name, map[string]string{"environment": env}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
